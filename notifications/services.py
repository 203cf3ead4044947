"""The outbox: every message is a Delivery row first; workers claim, send and record.

How a row moves (see "Delivery guarantees" in DESIGN.md):

    pending ──claim (conditional UPDATE, lease)──► sending ──► sent ──receipt──► delivered
       ▲                                            │    │                    └─► failed
       └──── transient error, attempts left ────────┘    ├─► delivered (no receipt follows)
             (next_attempt_at = now + backoff)            └─► failed (permanent, or attempts used up)
    pending ──fault resolved / person checked in──► cancelled

A failed page goes on with the person's next paging method (a new row).

Rows for the fault's collaboration group (`group` set: its messages, its card, new
members) wait, pending, until the group exists; the group itself is created by a row of
the same kind (DINGTALK_GROUP_CREATE), and so is the video conference. What happens
around the outbox — who is paged, repeats, deadlines — is in `orchestration.py`.

Ambiguous attempts (the request may have reached the provider but we never heard back:
a read timeout, or a worker that died after `dispatched_at` was written) are re-sent only
on channels whose provider de-duplicates by a key we send (the card's outTrackId, the
webhook's delivery id). Elsewhere — DING, robot group messages, SMS, voice, email — the
row becomes `sent` with `unconfirmed` set: never sent again on that channel. SMS and
voice wait for their receipt (`receipt_due_at`), which settles it either way; a page
whose receipt never comes, or whose channel has no receipts, goes on with the next
paging method. A person may thus hear from us on two channels, never twice on one.
"""

import logging
import random
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q

from incidents import services as incident_services
from incidents.models import Fault, RoleAssignment
from roster.models import Person
from django.utils import timezone

from .models import GROUP_CHANNELS, RECEIPT_CHANNELS, Channel, CollaborationGroup, Delivery
from .transports import aliyun_sms, aliyun_voice, dingtalk, email, sandbox, webhook
from .transports.base import Sent, TransportError

log = logging.getLogger(__name__)

Status = Delivery.Status

# Celery countdowns are kept short; anything later lives in next_attempt_at for the sweeper.
MAX_COUNTDOWN = 60
# A due row whose task has not claimed it this long after queueing is queued again.
REQUEUE_GRACE = timedelta(seconds=30)

DINGTALK_CHANNELS = {
    Channel.DINGTALK_GROUP_MESSAGE,
    Channel.DINGTALK_CARD,
    Channel.DINGTALK_ROBOT,
    Channel.DINGTALK_GROUP_CREATE,
    Channel.DINGTALK_GROUP_MEMBER_ADD,
    Channel.DINGTALK_CONFERENCE,
}

# Sent by orchestration.send: they need the group, the roster or the fault, not just an address.
ORCHESTRATED = {
    Channel.DINGTALK_ROBOT,
    Channel.DINGTALK_GROUP_CREATE,
    Channel.DINGTALK_GROUP_MEMBER_ADD,
    Channel.DINGTALK_CONFERENCE,
}

DING_REMIND = {
    Channel.DINGTALK_DING_APP: dingtalk.REMIND_APP,
    Channel.DINGTALK_DING_SMS: dingtalk.REMIND_SMS,
    Channel.DINGTALK_DING_PHONE: dingtalk.REMIND_PHONE,
}


# --- choosing transports ------------------------------------------------------------------


def transport_for(channel: str) -> str:
    """The module that will carry `channel`: its provider when configured, else the sandbox."""
    if channel in DING_REMIND or channel in DINGTALK_CHANNELS:
        # Custom robots need no app credentials, but they ride on the same switch so that
        # a demo with no DingTalk configured never reaches out to a group's real webhook.
        return "dingtalk" if dingtalk.configured() else "sandbox"
    configured = {
        Channel.ALIYUN_SMS: aliyun_sms.configured,
        Channel.ALIYUN_VOICE: aliyun_voice.configured,
        Channel.EMAIL: email.configured,
        Channel.WEBHOOK: webhook.configured,
    }[channel]
    return channel if configured() else "sandbox"


def can_reach(person: Person, channel: str) -> bool:
    """Whether the person has the contact detail `channel` needs."""
    if channel in DING_REMIND:
        return bool(person.dingtalk_user_id)
    if channel in (Channel.ALIYUN_SMS, Channel.ALIYUN_VOICE):
        return bool(person.phone)
    if channel == Channel.EMAIL:
        return bool(person.email)
    return False


def message_params(fault: Fault) -> dict:
    """The variables of the SMS and TTS templates: ${fault} ${level} ${title}."""
    # Template variables are short on Alibaba Cloud; the link is in the group and the email.
    return {"fault": f"#{fault.pk}", "level": fault.get_level_display(), "title": fault.title[:20]}


# --- creating rows ------------------------------------------------------------------------


@transaction.atomic
def delivery_create(
    *,
    fault: Fault,
    channel: str,
    idempotency_key: str,
    person: Person | None = None,
    target: str = "",
    subject: str = "",
    body: str = "",
    payload: dict | None = None,
    purpose: str = Delivery.Purpose.MESSAGE,
    page_key: str = "",
    method_index: int | None = None,
    stop_on_resolve: bool = True,
    group: CollaborationGroup | None = None,
    max_attempts: int | None = None,
) -> Delivery:
    """Queue one message. Asking again with the same idempotency key returns the same row.

    With `group`, the row waits until the group exists and is then sent to it.
    """
    lock_fault_first(fault.pk)
    if channel not in Channel.values:
        raise ValueError(f"unknown channel {channel!r}")
    now = timezone.now()
    delivery, created = Delivery.objects.get_or_create(
        idempotency_key=idempotency_key,
        defaults={
            "fault": fault,
            "person": person,
            "group": group,
            "target": target or (group.open_conversation_id if group is not None else ""),
            "channel": channel,
            "transport": transport_for(channel),
            "purpose": purpose,
            "subject": subject[:200],
            "body": body,
            "payload": payload or {},
            # OutId must fit 15 bytes; outTrackId and the webhook id reuse it.
            "provider_key": "w" + secrets.token_hex(7),
            "page_key": page_key,
            "method_index": method_index,
            "stop_on_resolve": stop_on_resolve,
            "max_attempts": max_attempts or settings.NOTIFY_MAX_ATTEMPTS,
            "next_attempt_at": now,
            "queued_at": now,
            "created_at": now,
        },
    )
    if created:
        if _group_ready(delivery):
            transaction.on_commit(lambda: enqueue(delivery.pk))
        else:
            # Not queued: the sweeper queues it once the group exists.
            Delivery.objects.filter(pk=delivery.pk).update(queued_at=None)
    return delivery


def _group_ready(d: Delivery) -> bool:
    """False for a row that must wait for the fault's group (it is queued once the group exists)."""
    if d.group_id is None or d.channel not in GROUP_CHANNELS:
        return True
    # Read from the database: the group may have been created since the row was loaded.
    return CollaborationGroup.objects.filter(pk=d.group_id).exclude(open_conversation_id="").exists()


@transaction.atomic
def person_page(
    *, fault: Fault, person: Person, page_key: str, subject: str, body: str, start_index: int = 0
) -> Delivery | None:
    """Page `person` with his first usable paging method from `start_index` on.

    Returns None, with a timeline entry, when no method is left.
    """
    lock_fault_first(fault.pk)
    methods = list(person.paging_methods or [])
    for index in range(start_index, len(methods)):
        channel = methods[index]
        if channel in Channel.values and can_reach(person, channel):
            return delivery_create(
                fault=fault,
                channel=channel,
                person=person,
                subject=subject,
                body=body,
                payload={"params": message_params(fault)},
                purpose=Delivery.Purpose.PAGE,
                page_key=page_key,
                method_index=index,
                idempotency_key=f"{page_key}:{index}",
            )
    incident_services.delivery_outcome_record(
        fault=fault,
        text=f"Could not page {person.name}: no paging method left",
        data={"person": {"id": person.pk, "name": person.name}, "status": "exhausted", "page": page_key},
    )
    return None


def enqueue(delivery_id: int, *, countdown: float = 0) -> None:
    """Queue the delivery task; if the broker is down the sweeper queues it later."""
    from . import tasks

    try:
        tasks.deliver.apply_async((delivery_id,), countdown=min(countdown, MAX_COUNTDOWN) or None)
    except Exception:
        log.warning("could not queue delivery %s; the sweeper will", delivery_id, exc_info=True)


# --- sending ------------------------------------------------------------------------------


@dataclass
class Lease:
    delivery: Delivery
    token: str


def delivery_claim(*, delivery_id: int) -> Lease | None:
    """pending → sending with a lease, if the row is due and nobody else has it.

    A row waiting for the fault's group is left alone until the group exists.
    """
    now = timezone.now()
    token = secrets.token_hex(8)
    waiting = Delivery.objects.filter(pk=delivery_id, target="", group__isnull=False, channel__in=GROUP_CHANNELS)
    if waiting.exists():
        group = CollaborationGroup.objects.filter(deliveries__pk=delivery_id).exclude(open_conversation_id="").first()
        if group is None:
            return None
        # Once set, a group's openConversationId never changes: filling it in is safe to race.
        waiting.update(target=group.open_conversation_id)
    claimed = (
        Delivery.objects.filter(pk=delivery_id, status=Status.PENDING)
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .update(
            status=Status.SENDING,
            lease_until=now + timedelta(seconds=settings.NOTIFY_LEASE_SECONDS),
            lease_token=token,
            attempts=F("attempts") + 1,
            dispatched_at=None,
        )
    )
    if claimed != 1:
        return None
    return Lease(Delivery.objects.select_related("fault", "person").get(pk=delivery_id), token)


def delivery_attempt(*, delivery_id: int) -> str | None:
    """Claim, send and record one attempt. Returns the row's new status, or None if not claimed."""
    lease = delivery_claim(delivery_id=delivery_id)
    if lease is None:
        return None
    delivery = lease.delivery
    if delivery.stop_on_resolve and not delivery.fault.is_open:
        _finish(lease, status=Status.CANCELLED, error="the fault is resolved")
        return Status.CANCELLED
    if delivery.purpose == Delivery.Purpose.PAGE and _checked_in(delivery):
        _finish(lease, status=Status.CANCELLED, error=f"{delivery.person.name} has checked in")
        return Status.CANCELLED
    # From here on the request may leave: a worker that dies now leaves an ambiguous row.
    # Only while our lease holds: a worker stalled past it has lost the row to the sweeper,
    # which may already have handed it to another worker, and must not send it too.
    dispatched = Delivery.objects.filter(pk=delivery.pk, status=Status.SENDING, lease_token=lease.token).update(
        dispatched_at=timezone.now()
    )
    if dispatched != 1:
        log.warning("delivery %s was reclaimed before we sent it", delivery.pk)
        return None
    try:
        sent = _send(delivery)
    except TransportError as error:
        return delivery_attempt_failed(lease=lease, error=error)
    return _sent(lease, sent)


def _send(d: Delivery) -> Sent:
    if d.channel in ORCHESTRATED:
        from . import orchestration

        return orchestration.send(d)
    if d.transport == "sandbox":
        return sandbox.send(d, address=_address(d))
    person = d.person
    if d.channel in DING_REMIND:
        return dingtalk.ding_send(remind_type=DING_REMIND[d.channel], user_ids=[person.dingtalk_user_id], content=d.body)
    params = d.payload.get("params") or {}
    if d.channel == Channel.ALIYUN_SMS:
        return aliyun_sms.send(phone=person.phone, params=params, out_id=d.provider_key)
    if d.channel == Channel.ALIYUN_VOICE:
        return aliyun_voice.call(phone=person.phone, params=params, out_id=d.provider_key)
    if d.channel == Channel.EMAIL:
        return email.send(to=_address(d), subject=d.subject, body=d.body, message_id=d.provider_key)
    if d.channel == Channel.DINGTALK_GROUP_MESSAGE:
        return dingtalk.group_message_send(open_conversation_id=d.target, title=d.subject, text=d.body)
    if d.channel == Channel.DINGTALK_CARD:
        return dingtalk.card_create_and_deliver(
            out_track_id=d.provider_key,
            open_conversation_id=d.target,
            params=d.payload.get("params") or {},
            at_user_ids=d.payload.get("at_user_ids") or [],
        )
    if d.channel == Channel.WEBHOOK:
        body = {"fault": d.fault_id, "subject": d.subject, "body": d.body, **(d.payload or {})}
        return webhook.send(url=_address(d), payload=body, delivery_id=d.idempotency_key)
    raise TransportError(f"no transport for {d.channel}", permanent=True)


def _address(d: Delivery) -> str:
    person = d.person
    if person is None:
        return d.target or (settings.NOTIFY_WEBHOOK_URL if d.channel == Channel.WEBHOOK else "")
    if d.channel in DING_REMIND:
        return person.dingtalk_user_id
    if d.channel == Channel.EMAIL:
        return person.email
    return person.phone


def _checked_in(d: Delivery) -> bool:
    active = RoleAssignment.objects.filter(fault_id=d.fault_id, person_id=d.person_id, ended_at__isnull=True)
    return active.exists() and not active.filter(checked_in_at__isnull=True).exists()


def _label(d: Delivery) -> str:
    text = f"{Channel(d.channel).label} to {d.recipient_label}"
    return text[0].upper() + text[1:]


def _outcome(d: Delivery, text: str, *, status: str, **extra) -> None:
    data = {
        "delivery": d.pk,
        "channel": d.channel,
        "transport": d.transport,
        "status": status,
        "person": {"id": d.person.pk, "name": d.person.name} if d.person_id else None,
        "attempt": d.attempts,
        **extra,
    }
    incident_services.delivery_outcome_record(fault=d.fault, text=text, data=data)


def lock_fault_first(fault_id: int) -> None:
    """Lock the fault's row before any row of ours.

    The lock order of the whole product: the fault first. Every incidents service locks
    the fault and then, inside its transaction, our subscribers write deliveries,
    engagements and deadlines; a transaction of ours that locked one of those rows first
    and then reached the fault (to record an outcome on its timeline) would deadlock with
    it on PostgreSQL. Re-locking a fault this transaction already holds costs nothing.
    """
    Fault.objects.select_for_update().filter(pk=fault_id).first()


def lock_after_its_fault(rows):
    """The first of `rows` (ours: they have a `fault`), locked after its fault, or None."""
    fault_id = rows.values_list("fault_id", flat=True).first()
    if fault_id is None:
        return None
    lock_fault_first(fault_id)
    return rows.select_for_update(of=("self",)).first()


def _held(lease: Lease):
    """The row, if our lease still holds it (a sweeper may have reclaimed it)."""
    return Delivery.objects.select_for_update().filter(
        pk=lease.delivery.pk, status=Status.SENDING, lease_token=lease.token
    )


@transaction.atomic
def _sent(lease: Lease, sent: Sent) -> str | None:
    d = lease.delivery
    lock_fault_first(d.fault_id)
    now = timezone.now()
    status = Status.DELIVERED if sent.delivered else Status.SENT
    if not _held(lease).exists():
        log.warning("delivery %s was reclaimed while we sent it", d.pk)
        return None
    _held(lease).update(
        status=status,
        provider_id=sent.provider_id[:128],
        sent_at=now,
        finished_at=now if sent.delivered else None,
        lease_until=None,
        last_error="",
    )
    if d.channel in SETTLED_ELSEWHERE:
        from . import orchestration

        orchestration.settle(d, sent)
        return status
    suffix = " (sandbox)" if d.transport == "sandbox" else ""
    _outcome(d, f"{_label(d)} {status}{suffix}", status=status)
    return status


# Calls whose success is recorded by the orchestration (the group exists, a member joined,
# the conference started) rather than as "… sent".
SETTLED_ELSEWHERE = {Channel.DINGTALK_GROUP_CREATE, Channel.DINGTALK_GROUP_MEMBER_ADD, Channel.DINGTALK_CONFERENCE}


def backoff(attempt: int, retry_after: float | None = None) -> timedelta:
    """Exponential backoff with jitter: base·2^(attempt-1), capped, times 0.5–1.0."""
    ceiling = min(settings.NOTIFY_BACKOFF_MAX, settings.NOTIFY_BACKOFF_BASE * 2 ** max(attempt - 1, 0))
    seconds = ceiling * random.uniform(0.5, 1.0)
    return timedelta(seconds=max(seconds, retry_after or 0))


@transaction.atomic
def delivery_attempt_failed(*, lease: Lease, error: TransportError) -> str | None:
    """Record a failed attempt: retry later, give up, or leave an ambiguous send unconfirmed."""
    lock_fault_first(lease.delivery.fault_id)
    held = _held(lease)
    row = held.first()
    if row is None:
        log.warning("delivery %s was reclaimed while we sent it", lease.delivery.pk)
        return None
    d = row
    d.fault = lease.delivery.fault
    now = timezone.now()
    if error.ambiguous and not d.has_provider_key:
        due = now + timedelta(seconds=settings.NOTIFY_RECEIPT_WAIT_SECONDS) if d.channel in RECEIPT_CHANNELS else None
        held.update(
            status=Status.SENT, unconfirmed=True, receipt_due_at=due, sent_at=now, lease_until=None, last_error=error.message
        )
        waiting = "waiting for its receipt" if due else "not sent again"
        _outcome(d, f"{_label(d)} unconfirmed: {error.message}; {waiting}", status="unconfirmed", error=error.message)
        if due is None and d.purpose == Delivery.Purpose.PAGE:
            _page_next(d)
        return Status.SENT
    if error.permanent or d.attempts >= d.max_attempts:
        held.update(status=Status.FAILED, finished_at=now, lease_until=None, last_error=error.message)
        why = "" if error.permanent else f" after {d.attempts} attempts"
        if d.channel in SETTLED_ELSEWHERE:
            from . import orchestration

            orchestration.gave_up(d, f"{error.message}{why}")
        else:
            _outcome(d, f"{_label(d)} failed{why}: {error.message}", status=Status.FAILED, error=error.message)
        if d.purpose == Delivery.Purpose.PAGE:
            _page_next(d)
        return Status.FAILED
    delay = backoff(d.attempts, error.retry_after)
    soon = delay.total_seconds() <= MAX_COUNTDOWN
    held.update(
        status=Status.PENDING,
        next_attempt_at=now + delay,
        queued_at=now if soon else None,
        lease_until=None,
        last_error=error.message,
    )
    _outcome(
        d,
        f"{_label(d)} failed ({error.message}); retrying in {int(delay.total_seconds())} s",
        status="retrying",
        error=error.message,
        next_attempt_at=(now + delay).isoformat(),
    )
    if soon:
        transaction.on_commit(lambda: enqueue(d.pk, countdown=delay.total_seconds()))
    return Status.PENDING


@transaction.atomic
def _finish(lease: Lease, *, status: str, error: str = "") -> None:
    lock_fault_first(lease.delivery.fault_id)
    _held(lease).update(status=status, finished_at=timezone.now(), lease_until=None, last_error=error)


def _page_next(d: Delivery) -> Delivery | None:
    """After a page failed on one method, go on with the person's next one."""
    fault = Fault.objects.get(pk=d.fault_id)
    if not fault.is_open or d.person_id is None or _checked_in(d):
        return None
    return person_page(
        fault=fault,
        person=d.person,
        page_key=d.page_key,
        subject=d.subject,
        body=d.body,
        start_index=(d.method_index or 0) + 1,
    )


# --- receipts -----------------------------------------------------------------------------


@transaction.atomic
def delivery_receipt_record(*, provider_key: str, channel: str, delivered: bool, detail: str, receipt: dict) -> bool:
    """Settle a sent message from the provider's receipt. Repeated receipts change nothing.

    Returns False when no such message exists (an unknown out_id).
    """
    d = lock_after_its_fault(
        Delivery.objects.select_related("fault", "person").filter(provider_key=provider_key, channel=channel)
    )
    if d is None:
        return False
    if d.status not in (Status.SENT, Status.SENDING):
        return True  # already settled (or never sent): a repeated push
    now = timezone.now()
    status = Status.DELIVERED if delivered else Status.FAILED
    Delivery.objects.filter(pk=d.pk).update(
        status=status, receipt=receipt, finished_at=now, lease_until=None, receipt_due_at=None,
        last_error="" if delivered else detail,
    )
    if channel == Channel.ALIYUN_VOICE:
        what = "answered" if delivered else "not answered"
    else:
        what = "delivered" if delivered else "not delivered"
    text = f"{_label(d)} {what}" + (f" ({detail})" if detail and not delivered else "")
    _outcome(d, text, status=status, receipt=receipt)
    if not delivered and d.purpose == Delivery.Purpose.PAGE:
        _page_next(d)
    return True


def sms_report_record(item: dict) -> bool:
    success = item.get("success") in (True, "true", "True")
    return delivery_receipt_record(
        provider_key=str(item.get("out_id") or ""),
        channel=Channel.ALIYUN_SMS,
        delivered=success,
        detail=str(item.get("err_msg") or item.get("err_code") or ""),
        receipt=item,
    )


def voice_report_record(item: dict) -> bool:
    # start_time is when the callee picked up, empty when nobody did; 200000 is a normal
    # call listened to and hung up.
    answered = bool(item.get("start_time")) or str(item.get("status_code")) == "200000"
    return delivery_receipt_record(
        provider_key=str(item.get("out_id") or ""),
        channel=Channel.ALIYUN_VOICE,
        delivered=answered,
        detail=str(item.get("status_msg") or item.get("status_code") or ""),
        receipt=item,
    )


# --- the check-in card --------------------------------------------------------------------


def card_check_in(*, out_track_id: str, user_id: str):
    """A click on the card's check-in button: check the DingTalk user in to the card's fault."""
    from incidents.errors import InvalidInput

    d = Delivery.objects.select_related("fault").filter(channel=Channel.DINGTALK_CARD, provider_key=out_track_id).first()
    if d is None:
        raise InvalidInput("This card is not one of ours.")
    person = Person.objects.filter(dingtalk_user_id=user_id).first() if user_id else None
    if person is None:
        raise InvalidInput("This DingTalk user is not in the roster.")
    return incident_services.role_check_in(fault=d.fault, person=person, via="card")


# --- stopping -----------------------------------------------------------------------------


def deliveries_cancel(*, fault: Fault, reason: str, person: Person | None = None) -> int:
    """Cancel what is still pending for the fault (or for one person's pages in it).

    Writes no timeline event: it runs inside other services' transactions, which write
    exactly one. The caller records the count with `deliveries_cancelled_record`.
    """
    rows = Delivery.objects.filter(fault=fault, status=Status.PENDING, stop_on_resolve=True)
    if person is not None:
        rows = rows.filter(person=person, purpose=Delivery.Purpose.PAGE)
    return rows.update(status=Status.CANCELLED, finished_at=timezone.now(), last_error=reason)


def deliveries_cancelled_record(*, fault: Fault, count: int, reason: str, person: Person | None = None) -> None:
    """Put "N pending messages cancelled" on the timeline, in its own transaction."""
    if not count:
        return
    who = f" to {person.name}" if person is not None else ""
    noun = "message" if count == 1 else "messages"
    incident_services.delivery_outcome_record(
        fault=fault,
        text=f"{count} pending {noun}{who} cancelled: {reason}",
        # The person, so that the page can say it in the reader's language.
        data={
            "status": "cancelled",
            "count": count,
            "person": {"id": person.pk, "name": person.name} if person is not None else None,
            "reason": reason,
        },
    )


def _checked_in_all(fault_id: int, person_id: int) -> bool:
    return not RoleAssignment.objects.filter(
        fault_id=fault_id, person_id=person_id, ended_at__isnull=True, checked_in_at__isnull=True
    ).exists()


# --- the sweeper --------------------------------------------------------------------------


def deliveries_sweep() -> dict:
    """Run by beat every few seconds: cancel, reclaim, settle and re-queue what is due."""
    now = timezone.now()
    counts = {"cancelled": 0, "reclaimed": 0, "unconfirmed": 0, "queued": 0}

    resolved = Fault.objects.exclude(status__in=Fault.OPEN_STATUSES).filter(
        deliveries__status=Status.PENDING, deliveries__stop_on_resolve=True
    ).distinct()
    for fault in resolved:
        with transaction.atomic():
            lock_fault_first(fault.pk)
            reason = f"the fault is {fault.status}"
            count = deliveries_cancel(fault=fault, reason=reason)
            deliveries_cancelled_record(fault=fault, count=count, reason=reason)
        counts["cancelled"] += count

    for d in Delivery.objects.filter(status=Status.SENDING, lease_until__lt=now).select_related("fault", "person"):
        if delivery_reclaim(lease=Lease(d, d.lease_token)) is not None:
            counts["reclaimed"] += 1

    for d in Delivery.objects.filter(status=Status.SENT, unconfirmed=True, receipt_due_at__lte=now):
        counts["unconfirmed"] += _receipt_overdue(d.pk)

    due = Delivery.objects.filter(status=Status.PENDING).filter(
        Q(queued_at__isnull=True, next_attempt_at__lte=now)
        | Q(next_attempt_at__lte=now - REQUEUE_GRACE, queued_at__lte=now - REQUEUE_GRACE)
    )
    # Rows waiting for a group that does not exist yet are queued once it does.
    waiting = Delivery.objects.filter(
        status=Status.PENDING, target="", channel__in=GROUP_CHANNELS, group__open_conversation_id=""
    )
    due = due.exclude(pk__in=waiting.values("pk"))
    for pk in list(due.values_list("pk", flat=True)[:500]):
        if Delivery.objects.filter(pk=pk, status=Status.PENDING).update(queued_at=now):
            enqueue(pk)
            counts["queued"] += 1
    return counts


@transaction.atomic
def delivery_reclaim(*, lease: Lease) -> str | None:
    """Take back a row whose worker's lease expired.

    Whether the request may have left is read from the row under its lock: a worker that
    was only slow may mark it dispatched up to the moment the sweeper locks it (and after
    that it can no longer, see `delivery_attempt`).
    """
    lock_fault_first(lease.delivery.fault_id)
    row = _held(lease).first()
    if row is None:
        return None
    if row.dispatched_at is None:
        error = TransportError("the worker stopped before sending")
    else:
        error = TransportError("the worker stopped while sending", ambiguous=True)
    return delivery_attempt_failed(lease=lease, error=error)


@transaction.atomic
def _receipt_overdue(delivery_id: int) -> int:
    d = lock_after_its_fault(
        Delivery.objects.select_related("fault", "person").filter(pk=delivery_id, status=Status.SENT, unconfirmed=True)
    )
    if d is None:
        return 0
    Delivery.objects.filter(pk=d.pk).update(status=Status.FAILED, finished_at=timezone.now(), receipt_due_at=None)
    _outcome(d, f"{_label(d)} unconfirmed: no receipt came", status=Status.FAILED)
    if d.purpose == Delivery.Purpose.PAGE:
        _page_next(d)
    return 1

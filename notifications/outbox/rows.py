"""Writing and cancelling outbox rows, and pages that walk a person's paging methods."""

import secrets
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from incidents import services as incident_services
from incidents.models import Fault
from roster.models import Person

from .. import channels
from ..models import GROUP_CHANNELS, Channel, CollaborationGroup, Delivery
from .queue import enqueue, priority_for, queue_for

Status = Delivery.Status


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


# No savepoint: every caller lets an error end its whole transaction.
@transaction.atomic(savepoint=False)
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
    page_cycle: int = 0,
    stop_on_resolve: bool = True,
    group: CollaborationGroup | None = None,
    not_before=None,
) -> Delivery:
    """Queue one message. Asking again with the same idempotency key returns the same row.

    With `group`, the row waits until the group exists and is then sent to it. A message
    is retried until NOTIFY_RETRY_HORIZON has passed; a page tries its method
    NOTIFY_MAX_ATTEMPTS times and then goes on with the person's next method.
    """
    lock_fault_first(fault.pk)
    if channel not in Channel.values:
        raise ValueError(f"unknown channel {channel!r}")
    now = timezone.now()
    is_page = purpose == Delivery.Purpose.PAGE
    # Every key names its fault, and the fault is locked: nobody else can write this key
    # between the read and the insert (so no savepoint for a get_or_create is needed).
    delivery = Delivery.objects.filter(idempotency_key=idempotency_key).first()
    if delivery is not None:
        return delivery
    # A row for a group that does not exist yet is not queued: the sweeper queues it once
    # the group exists.
    ready = _group_ready(group, channel)
    delivery = Delivery.objects.create(
        idempotency_key=idempotency_key,
        **{
            "fault": fault,
            "person": person,
            "group": group,
            "target": target or (group.open_conversation_id if group is not None else ""),
            "channel": channel,
            "transport": channels.transport_for(channel),
            "purpose": purpose,
            "subject": subject[:200],
            "body": body,
            "payload": payload or {},
            # OutId must fit 15 bytes; outTrackId and the webhook id reuse it.
            "provider_key": "w" + secrets.token_hex(7),
            "page_key": page_key,
            "method_index": method_index,
            "page_cycle": page_cycle,
            "stop_on_resolve": stop_on_resolve,
            "max_attempts": settings.NOTIFY_MAX_ATTEMPTS,
            "retry_until": None if is_page else now + timedelta(seconds=settings.NOTIFY_RETRY_HORIZON),
            "next_attempt_at": max(now, not_before or now),
            "queued_at": now if ready else None,
            "created_at": now,
        },
    )
    if ready:
        wait = (delivery.next_attempt_at - now).total_seconds()
        queue = queue_for(purpose=purpose, channel=channel)
        first = is_page and not Delivery.objects.filter(fault=fault, purpose=purpose).exclude(pk=delivery.pk).exists()
        priority = priority_for(channel=channel, first_page=first)
        transaction.on_commit(lambda: enqueue(delivery.pk, queue=queue, countdown=wait, priority=priority))
    return delivery


def _group_ready(group: CollaborationGroup | None, channel: str) -> bool:
    """False for a message that must wait for the fault's group to exist."""
    if group is None or channel not in GROUP_CHANNELS:
        return True
    # Read from the database: the group may have been created since the row was loaded.
    return CollaborationGroup.objects.filter(pk=group.pk).exclude(open_conversation_id="").exists()


@transaction.atomic
def person_page(
    *, fault: Fault, person: Person, page_key: str, subject: str, body: str, start_index: int = 0, cycle: int = 0
) -> Delivery | None:
    """Page `person` with his first usable paging method from `start_index` on.

    After the last method comes the first again, one cycle later and after a pause, as
    long as some method of the cycle failed for now rather than for good: a provider
    outage is outlasted. Returns None, with a timeline entry, when every method refused.
    """
    lock_fault_first(fault.pk)
    methods = list(person.paging_methods or [])
    usable = [i for i, c in enumerate(methods) if c in Channel.values and channels.can_reach(person, c)]
    later = [i for i in usable if i >= start_index]
    not_before = None
    if not later and usable and _worth_another_cycle(page_key, cycle):
        cycle, later = cycle + 1, usable
        not_before = timezone.now() + _cycle_pause(cycle)
    if not later:
        incident_services.delivery_outcome_record(
            fault=fault,
            text=f"Could not page {person.name}: no paging method left",
            data={"person": {"id": person.pk, "name": person.name}, "status": "exhausted", "page": page_key},
        )
        return None
    index = later[0]
    return delivery_create(
        fault=fault,
        channel=methods[index],
        person=person,
        subject=subject,
        body=body,
        payload={"params": channels.message_params(fault)},
        purpose=Delivery.Purpose.PAGE,
        page_key=page_key,
        method_index=index,
        page_cycle=cycle,
        not_before=not_before,
        idempotency_key=f"{page_key}:{index}" if cycle == 0 else f"{page_key}:c{cycle}:{index}",
    )


def _worth_another_cycle(page_key: str, cycle: int) -> bool:
    """True when a method of this cycle failed for now (outage, lost answer), not for good."""
    rows = Delivery.objects.filter(page_key=page_key, page_cycle=cycle, purpose=Delivery.Purpose.PAGE)
    return rows.filter(Q(status=Status.FAILED, refused=False) | Q(unconfirmed=True)).exists()


def _cycle_pause(cycle: int) -> timedelta:
    return timedelta(seconds=min(settings.NOTIFY_BACKOFF_MAX, settings.NOTIFY_BACKOFF_BASE * 2 ** max(cycle - 1, 0)))


# --- stopping -----------------------------------------------------------------------------


def deliveries_cancel(*, fault: Fault, reason: str, person: Person | None = None) -> int:
    """Cancel what is still pending for the fault (or for one person's pages in it).

    A row whose earlier attempt may have reached the provider under its key is not
    cancelled: it is settled by sending again with the same key (a group that exists at
    DingTalk is learned about, never forgotten). Rows that wait for a group that will now
    never be created are cancelled with it. Writes no timeline event: it runs inside other
    services' transactions, which write exactly one. The caller records the count with
    `deliveries_cancelled_record`.
    """
    rows = Delivery.objects.filter(fault=fault, status=Status.PENDING, stop_on_resolve=True, may_have_left=False)
    if person is not None:
        rows = rows.filter(person=person, purpose=Delivery.Purpose.PAGE)
    count = rows.update(status=Status.CANCELLED, finished_at=timezone.now(), last_error=reason)
    if person is None:
        count += orphans_cancel(fault_id=fault.pk)
    return count


def orphans_cancel(*, fault_id: int) -> int:
    """Cancel rows that wait for a group whose creation ended without a group."""
    creating = Delivery.objects.filter(
        group_id__isnull=False, channel=Channel.DINGTALK_GROUP_CREATE, status__in=(Status.PENDING, Status.SENDING)
    )
    waiting = Delivery.objects.filter(
        fault_id=fault_id, status=Status.PENDING, target="", channel__in=GROUP_CHANNELS,
        group__open_conversation_id="",
    ).exclude(Q(group_id__in=creating.values("group_id")))
    return waiting.update(status=Status.CANCELLED, finished_at=timezone.now(), last_error="the group was never created")


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

"""One attempt at a row: claim it with a lease, send it through its channel, record what came of it.

Ambiguous attempts (the request may have reached the provider but we never heard back:
a read timeout, or a worker that died after `dispatched_at` was written) are re-sent only
on channels whose provider de-duplicates by a key we send (the card's outTrackId, the
webhook's delivery id, the group's uuid); such a row is marked `may_have_left` and is
settled, never cancelled blind. Elsewhere — DING, group and robot messages, SMS, voice,
email — the row becomes `sent` with `unconfirmed` set: never sent again on that channel.
SMS and voice wait for their receipt (`receipt_due_at`); a page whose receipt never comes,
or whose channel has no receipts, goes on with the next paging method. A person may thus
hear from us on two channels, never twice on one.
"""

import logging
import random
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from incidents import selectors as incident_selectors
from incidents import services as incident_services
from incidents.models import Fault

from .. import channels
from ..transports.base import Sent, TransportError
from ..models import GROUP_CHANNELS, RECEIPT_CHANNELS, Channel, CollaborationGroup, Delivery
from . import outages
from .queue import MAX_COUNTDOWN, enqueue, priority_for, queue_for
from .rows import lock_fault_first, person_page

log = logging.getLogger(__name__)

Status = Delivery.Status


# --- what the response layer records itself ------------------------------------------------


@dataclass(frozen=True)
class Settler:
    """How the success or final failure of a call that is not a message is recorded
    (the group exists, a member joined, the conference started): by the layer above."""

    sent: Callable[[Delivery, Sent], None]
    failed: Callable[[Delivery, str], None]


_settlers: dict[str, Settler] = {}


def settle_with(channel: str, settler: Settler) -> None:
    """Register, from AppConfig.ready(), who records the outcome of `channel`."""
    _settlers[channel] = settler


# --- claiming and sending -----------------------------------------------------------------


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
    if delivery.stop_on_resolve and not delivery.may_have_left and not delivery.fault.is_open:
        _finish(lease, status=Status.CANCELLED, error="the fault is resolved")
        return Status.CANCELLED
    if delivery.purpose == Delivery.Purpose.PAGE and _checked_in(delivery):
        _finish(lease, status=Status.CANCELLED, error=f"{delivery.person.name} has checked in")
        return Status.CANCELLED
    if outages.holds(delivery.transport, may_probe=delivery.has_provider_key or delivery.channel in RECEIPT_CHANNELS):
        _hold(lease)
        return Status.PENDING
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
        sent = channels.send(delivery)
    except TransportError as error:
        failure = error
    else:
        failure = None
    if failure is not None:
        status = _durably(lambda: delivery_attempt_failed(lease=lease, error=failure), lease)
        outages.observe(delivery.transport, ok=False, refused=failure.permanent, error=failure.message)
        return status
    # The provider has it: recording that must not be lost to a database blip, or the
    # sweeper would count a delivered message as unconfirmed and page the next method.
    status = _durably(lambda: _sent(lease, sent), lease)
    outages.observe(delivery.transport, ok=True)
    return status


def _durably(record: Callable[[], str | None], lease: Lease) -> str | None:
    """Run `record` until it commits, for at most half a lease (then the sweeper settles the row)."""
    give_up = time.monotonic() + settings.NOTIFY_LEASE_SECONDS / 2
    pause = 0.2
    while True:
        try:
            return record()
        except DatabaseError:
            if time.monotonic() + pause >= give_up:
                raise
            log.warning("could not record delivery %s; trying again", lease.delivery.pk, exc_info=True)
            # A dropped connection is replaced on the next query (outside a transaction only:
            # inside one, the caller's transaction owns the connection).
            if not connection.in_atomic_block and not connection.is_usable():
                connection.close()
            time.sleep(pause)
            pause = min(pause * 2, 5)


def _checked_in(d: Delivery) -> bool:
    return incident_selectors.has_checked_in(d.fault_id, d.person_id)


# --- recording ----------------------------------------------------------------------------


def label(d: Delivery) -> str:
    text = f"{Channel(d.channel).label} to {d.recipient_label}"
    return text[0].upper() + text[1:]


def sandbox_suffix(d: Delivery) -> str:
    return " (sandbox)" if d.transport == "sandbox" else ""


def outcome_record(d: Delivery, text: str, *, status: str, **extra) -> None:
    """Put what became of `d` on its fault's timeline (a `delivery.outcome` event)."""
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
    settler = _settlers.get(d.channel)
    if settler is not None:
        settler.sent(d, sent)
        return status
    outcome_record(d, f"{label(d)} {status}{sandbox_suffix(d)}", status=status)
    return status


def backoff(attempt: int, retry_after: float | None = None) -> timedelta:
    """Exponential backoff with jitter: base·2^(attempt-1), capped, times 0.5–1.0."""
    ceiling = min(settings.NOTIFY_BACKOFF_MAX, settings.NOTIFY_BACKOFF_BASE * 2 ** max(attempt - 1, 0))
    seconds = ceiling * random.uniform(0.5, 1.0)
    return timedelta(seconds=max(seconds, retry_after or 0))


def _out_of_tries(d: Delivery, now) -> bool:
    if d.retry_until is not None:
        return now >= d.retry_until
    return d.attempts >= d.max_attempts


@transaction.atomic
def delivery_attempt_failed(*, lease: Lease, error: TransportError) -> str | None:
    """Record a failed attempt: retry later, give up, or leave an ambiguous send unconfirmed."""
    lock_fault_first(lease.delivery.fault_id)
    held = _held(lease)
    d = held.first()
    if d is None:
        log.warning("delivery %s was reclaimed while we sent it", lease.delivery.pk)
        return None
    d.fault = lease.delivery.fault
    now = timezone.now()
    if error.ambiguous and not d.has_provider_key:
        due = now + timedelta(seconds=settings.NOTIFY_RECEIPT_WAIT_SECONDS) if d.channel in RECEIPT_CHANNELS else None
        held.update(
            status=Status.SENT, unconfirmed=True, receipt_due_at=due, sent_at=now, lease_until=None, last_error=error.message
        )
        waiting = "waiting for its receipt" if due else "not sent again"
        outcome_record(d, f"{label(d)} unconfirmed: {error.message}; {waiting}", status="unconfirmed", error=error.message)
        if due is None and d.purpose == Delivery.Purpose.PAGE:
            page_next(d)
        return Status.SENT
    if error.permanent or _out_of_tries(d, now):
        held.update(
            status=Status.FAILED, finished_at=now, lease_until=None, last_error=error.message, refused=error.permanent
        )
        why = "" if error.permanent else f" after {d.attempts} attempts"
        settler = _settlers.get(d.channel)
        if settler is not None:
            settler.failed(d, f"{error.message}{why}")
        else:
            outcome_record(d, f"{label(d)} failed{why}: {error.message}", status=Status.FAILED, error=error.message)
        if d.purpose == Delivery.Purpose.PAGE:
            page_next(d)
        return Status.FAILED
    delay = backoff(d.attempts, error.retry_after)
    soon = delay.total_seconds() <= MAX_COUNTDOWN
    held.update(
        status=Status.PENDING,
        next_attempt_at=now + delay,
        queued_at=now if soon else None,
        lease_until=None,
        last_error=error.message,
        may_have_left=d.may_have_left or error.ambiguous,
    )
    if not outages.current_of([d.transport]):
        # During an outage the outage's own entry tells the story: one line per retry of
        # every held message would bury the timeline.
        outcome_record(
            d,
            f"{label(d)} failed ({error.message}); retrying in {int(delay.total_seconds())} s",
            status="retrying",
            error=error.message,
            next_attempt_at=(now + delay).isoformat(),
        )
    if soon:
        queue = queue_for(purpose=d.purpose, channel=d.channel)
        priority = priority_for(channel=d.channel)
        transaction.on_commit(lambda: enqueue(d.pk, queue=queue, countdown=delay.total_seconds(), priority=priority))
    return Status.PENDING


@transaction.atomic
def _hold(lease: Lease) -> None:
    """Put the row back, unsent and its attempt not counted, until the provider answers again.

    The sweeper queues it when it is due, oldest first and in batches, so that a backlog
    drains at a steady pace once the outage ends.
    """
    lock_fault_first(lease.delivery.fault_id)
    _held(lease).update(
        status=Status.PENDING, attempts=F("attempts") - 1, lease_until=None, queued_at=None,
        next_attempt_at=timezone.now() + timedelta(seconds=settings.NOTIFY_OUTAGE_PROBE_EVERY),
    )


@transaction.atomic
def _finish(lease: Lease, *, status: str, error: str = "") -> None:
    lock_fault_first(lease.delivery.fault_id)
    _held(lease).update(status=status, finished_at=timezone.now(), lease_until=None, last_error=error)


def page_next(d: Delivery) -> Delivery | None:
    """After a page failed on one method, go on with the person's next one (or cycle again)."""
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
        cycle=d.page_cycle,
    )

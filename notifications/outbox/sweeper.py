"""The sweeper, run by beat every NOTIFY_SWEEP_EVERY seconds: nothing waits forever.

It cancels what a resolved fault no longer needs, reclaims rows whose worker died,
settles unconfirmed sends whose receipt never came, cancels rows that wait for a group
that will never exist, and re-queues due rows whose broker message was lost — in small
batches, oldest first, so that a backlog after an outage drains at a steady pace.
"""

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from incidents.models import Fault

from ..models import GROUP_CHANNELS, Delivery
from . import outages
from .attempts import Lease, delivery_attempt_failed, label, outcome_record, page_next
from .queue import enqueue, priority_for, queue_for
from .rows import deliveries_cancel, deliveries_cancelled_record, lock_after_its_fault, lock_fault_first, orphans_cancel
from ..transports.base import TransportError

Status = Delivery.Status

# A due row whose task has not claimed it this long after queueing is queued again.
REQUEUE_GRACE = timedelta(seconds=30)


def deliveries_sweep() -> dict:
    """Cancel, reclaim, settle and re-queue what is due; returns the counts."""
    now = timezone.now()
    counts = {"cancelled": 0, "reclaimed": 0, "unconfirmed": 0, "queued": 0}

    resolved = Fault.objects.exclude(status__in=Fault.OPEN_STATUSES).filter(
        deliveries__status=Status.PENDING, deliveries__stop_on_resolve=True, deliveries__may_have_left=False
    ).distinct()
    for fault in resolved[: settings.NOTIFY_SWEEP_BATCH]:
        with transaction.atomic():
            lock_fault_first(fault.pk)
            reason = f"the fault is {fault.status}"
            count = deliveries_cancel(fault=fault, reason=reason)
            deliveries_cancelled_record(fault=fault, count=count, reason=reason)
        counts["cancelled"] += count

    orphaned = Delivery.objects.filter(
        status=Status.PENDING, target="", channel__in=GROUP_CHANNELS, group__open_conversation_id=""
    ).values_list("fault_id", flat=True).distinct()
    for fault_id in list(orphaned[: settings.NOTIFY_SWEEP_BATCH]):
        with transaction.atomic():
            lock_fault_first(fault_id)
            counts["cancelled"] += orphans_cancel(fault_id=fault_id)

    expired = Delivery.objects.filter(status=Status.SENDING, lease_until__lt=now).select_related("fault", "person")
    for d in expired[: settings.NOTIFY_SWEEP_BATCH]:
        if delivery_reclaim(lease=Lease(d, d.lease_token)) is not None:
            counts["reclaimed"] += 1

    counts["probed"] = outages.probe()
    counts["told"] = outages.tell_new_faults()

    overdue = Delivery.objects.filter(status=Status.SENT, unconfirmed=True, receipt_due_at__lte=now)
    for pk in list(overdue.values_list("pk", flat=True)[: settings.NOTIFY_SWEEP_BATCH]):
        counts["unconfirmed"] += _receipt_overdue(pk)

    due = Delivery.objects.filter(status=Status.PENDING).filter(
        Q(queued_at__isnull=True, next_attempt_at__lte=now)
        | Q(next_attempt_at__lte=now - REQUEUE_GRACE, queued_at__lte=now - REQUEUE_GRACE)
    )
    # Rows waiting for a group that does not exist yet are queued once it does.
    waiting = Delivery.objects.filter(
        status=Status.PENDING, target="", channel__in=GROUP_CHANNELS, group__open_conversation_id=""
    )
    due = due.exclude(pk__in=waiting.values("pk")).order_by("next_attempt_at", "pk")
    for pk, purpose, channel in list(due.values_list("pk", "purpose", "channel")[: settings.NOTIFY_SWEEP_BATCH]):
        if Delivery.objects.filter(pk=pk, status=Status.PENDING).update(queued_at=now):
            enqueue(pk, queue=queue_for(purpose=purpose, channel=channel), priority=priority_for(channel=channel))
            counts["queued"] += 1
    return counts


@transaction.atomic
def delivery_reclaim(*, lease: Lease) -> str | None:
    """Take back a row whose worker's lease expired.

    Whether the request may have left is read from the row under its lock: a worker that
    was only slow may mark it dispatched up to the moment the sweeper locks it (and after
    that it can no longer, see `attempts.delivery_attempt`).
    """
    lock_fault_first(lease.delivery.fault_id)
    row = Delivery.objects.select_for_update().filter(
        pk=lease.delivery.pk, status=Status.SENDING, lease_token=lease.token
    ).first()
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
    now = timezone.now()
    still_needed = d.fault.is_open or not d.stop_on_resolve
    if d.purpose == Delivery.Purpose.MESSAGE and still_needed and (d.retry_until is None or now < d.retry_until):
        # The provider sends a receipt for every message it took: none means it never took
        # this one (its answer was lost on the way, or it hung), so the message goes again.
        Delivery.objects.filter(pk=d.pk).update(
            status=Status.PENDING, unconfirmed=False, receipt_due_at=None, sent_at=None, next_attempt_at=now,
            queued_at=None,
        )
        outcome_record(d, f"{label(d)} unconfirmed: no receipt came; sending it again", status="retrying")
        return 1
    Delivery.objects.filter(pk=d.pk).update(status=Status.FAILED, finished_at=now, receipt_due_at=None)
    outcome_record(d, f"{label(d)} unconfirmed: no receipt came", status=Status.FAILED)
    if d.purpose == Delivery.Purpose.PAGE:
        page_next(d)
    return 1

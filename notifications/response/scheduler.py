"""The scheduler's entry point: take every engagement and deadline that is due.

Run by beat every NOTIFY_FOLLOW_UP_EVERY seconds on the `scheduler` queue, and queued for
one fault right after a change that made something due. Each step is its own small
transaction; a run takes at most NOTIFY_SWEEP_BATCH rows of each kind per pass, so that
it never holds a worker for long.
"""

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from ..models import Deadline, Engagement
from ..outbox.queue import enqueue_follow_up
from .deadlines import deadline_follow_up
from .engagements import engagement_follow_up


def follow_up_after_commit(fault_id: int) -> None:
    """Queue a follow-up run for the fault after commit; beat runs one anyway if the broker is down."""
    transaction.on_commit(lambda: enqueue_follow_up(fault_id))


def follow_ups_run(*, fault_id: int | None = None) -> dict:
    """Take every engagement and deadline that is due (of one fault, or all)."""
    counts: dict[str, int] = {}
    # A step can make another due at once (a new commander to page): look again, a few times.
    for _ in range(5):
        now = timezone.now()
        engagements = Engagement.objects.filter(ended_at__isnull=True, next_check_at__lte=now)
        deadlines = Deadline.objects.filter(done_at__isnull=True, due_at__lte=now)
        if fault_id is not None:
            engagements, deadlines = engagements.filter(fault_id=fault_id), deadlines.filter(fault_id=fault_id)
        batch = settings.NOTIFY_SWEEP_BATCH
        steps = [
            engagement_follow_up(engagement_id=pk)
            for pk in list(engagements.order_by("next_check_at", "pk").values_list("pk", flat=True)[:batch])
        ] + [
            deadline_follow_up(deadline_id=pk)
            for pk in list(deadlines.order_by("due_at", "pk").values_list("pk", flat=True)[:batch])
        ]
        for done in filter(None, steps):
            counts[done] = counts.get(done, 0) + 1
        if not any(steps):
            break
    return counts

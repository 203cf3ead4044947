"""Which Celery queue carries what, and queueing by task name.

Three queues, so that no kind of work waits behind another (DESIGN.md, "Delivery
guarantees"): `pages` for what gets people into the room (pages, the group, its card,
new members), `messages` for everything else that is sent, `scheduler` for the sweeper
and the follow-ups. A slow provider fills a sending queue; it never delays a deadline.
"""

import logging

from celery import current_app
from django.conf import settings
from django.core.cache import cache

from ..models import Channel, Delivery

log = logging.getLogger(__name__)

PAGES, MESSAGES, SCHEDULER = "pages", "messages", "scheduler"
QUEUES = (PAGES, MESSAGES, SCHEDULER)

DELIVER_TASK = "notifications.tasks.deliver"
FOLLOW_UP_TASK = "notifications.tasks.follow_up"

# Celery countdowns are kept short; anything later lives in next_attempt_at for the sweeper.
MAX_COUNTDOWN = 60

URGENT_CHANNELS = {Channel.DINGTALK_GROUP_CREATE, Channel.DINGTALK_GROUP_MEMBER_ADD, Channel.DINGTALK_CARD}


# Within a queue, Redis serves lower numbers first (kombu's priority steps 0, 3, 6, 9): a
# fault's first page goes ahead of everything else, so that in a storm of faults every
# fault reaches someone before any fault's later pages; then the group and its card.
FIRST_PAGE, GROUP, REST = 0, 3, 6


def queue_for(*, purpose: str, channel: str) -> str:
    if purpose == Delivery.Purpose.PAGE or channel in URGENT_CHANNELS:
        return PAGES
    return MESSAGES


def priority_for(*, channel: str, first_page: bool = False) -> int:
    if first_page:
        return FIRST_PAGE
    return GROUP if channel in URGENT_CHANNELS else REST


def enqueue(delivery_id: int, *, queue: str, countdown: float = 0, priority: int = REST) -> None:
    """Queue the delivery task; if the broker is down the sweeper queues it later."""
    try:
        current_app.send_task(
            DELIVER_TASK, args=(delivery_id,), queue=queue, priority=priority,
            countdown=min(countdown, MAX_COUNTDOWN) or None,
        )
    except Exception:
        log.warning("could not queue delivery %s; the sweeper will", delivery_id, exc_info=True)


def _follow_up_key(fault_id: int) -> str:
    return f"notifications:follow-up-queued:{fault_id}"


def enqueue_follow_up(fault_id: int) -> None:
    """Queue a follow-up run for one fault, unless one is already waiting in the queue.

    Ten contacts pulled in by one declaration ask for ten runs; one run takes them all.
    The mark expires on its own, so a lost task only delays the fault to beat's next run.
    """
    try:
        if not cache.add(_follow_up_key(fault_id), 1, timeout=settings.NOTIFY_FOLLOW_UP_EVERY):
            return
    except Exception:
        log.warning("could not mark the follow-up of fault %s as queued", fault_id, exc_info=True)
    try:
        current_app.send_task(FOLLOW_UP_TASK, kwargs={"fault_id": fault_id}, queue=SCHEDULER)
    except Exception:
        log.warning("could not queue the follow-up of fault %s; beat will run it", fault_id, exc_info=True)


def follow_up_started(fault_id: int) -> None:
    """A run has begun: a change from now on needs a run of its own."""
    try:
        cache.delete(_follow_up_key(fault_id))
    except Exception:
        log.warning("could not clear the follow-up mark of fault %s", fault_id, exc_info=True)

"""Thin Celery tasks: take ids, call the outbox or the scheduler.

`deliver` runs on the `pages` or `messages` queue (see outbox.queue); `sweep` and
`follow_up` on `scheduler`, so that deadlines never wait behind a slow provider.
"""

from celery import shared_task

from .outbox.attempts import delivery_attempt
from .outbox.queue import follow_up_started
from .outbox.sweeper import deliveries_sweep
from .response.scheduler import follow_ups_run


@shared_task(ignore_result=True, name="notifications.tasks.deliver")
def deliver(delivery_id: int) -> None:
    delivery_attempt(delivery_id=delivery_id)


@shared_task(ignore_result=True, name="notifications.tasks.sweep")
def sweep() -> None:
    deliveries_sweep()


@shared_task(ignore_result=True, name="notifications.tasks.follow_up")
def follow_up(fault_id: int | None = None) -> None:
    if fault_id is not None:
        follow_up_started(fault_id)
    follow_ups_run(fault_id=fault_id)

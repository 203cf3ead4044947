"""Thin Celery tasks: take ids, call services. Idempotent by the outbox's conditional claim."""

from celery import shared_task

from . import orchestration, services


@shared_task(ignore_result=True, name="notifications.tasks.deliver")
def deliver(delivery_id: int) -> None:
    services.delivery_attempt(delivery_id=delivery_id)


@shared_task(ignore_result=True, name="notifications.tasks.sweep")
def sweep() -> None:
    services.deliveries_sweep()


@shared_task(ignore_result=True, name="notifications.tasks.follow_up")
def follow_up(fault_id: int | None = None) -> None:
    orchestration.follow_ups_run(fault_id=fault_id)

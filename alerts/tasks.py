"""Celery tasks of the alerts app: thin, the work is in `heartbeats`."""

from celery import shared_task

from . import heartbeats


@shared_task(name="alerts.tasks.heartbeats_check")
def heartbeats_check() -> list[int]:
    return heartbeats.check()

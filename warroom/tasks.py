from celery import shared_task

from . import heartbeat


@shared_task(bind=True, ignore_result=True, name="warroom.tasks.heartbeat")
def heartbeat_task(self):
    heartbeat.beat(self.request.hostname or "worker")



from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = "Notifications"

    def ready(self):
        from incidents import events

        from . import orchestration

        # Inside the service's transaction: the outbox rows, the group, engagements and
        # deadlines commit (or roll back) with the event. It writes no event of its own.
        events.subscribe(orchestration.on_timeline_event, in_transaction=True)

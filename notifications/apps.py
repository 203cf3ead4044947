from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = "Notifications"

    def ready(self):
        from incidents import events

        from . import services

        # Inside the service's transaction, so that cancelling commits with the resolution.
        events.subscribe(services.on_timeline_event, in_transaction=True)

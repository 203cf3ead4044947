from django.apps import AppConfig


class WarroomConfig(AppConfig):
    name = "warroom"
    verbose_name = "War room"

    def ready(self):
        from incidents import events

        from . import broadcast

        events.subscribe(broadcast.on_timeline_event)

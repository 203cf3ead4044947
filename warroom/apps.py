from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class WarroomConfig(AppConfig):
    name = "warroom"
    verbose_name = _("War room")

    def ready(self):
        from incidents import events

        from . import broadcast

        events.subscribe(broadcast.on_timeline_event)

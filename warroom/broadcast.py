"""Sends each committed timeline event to the pages watching that fault.

The event is worded and serialised here, once per language, not once per socket: a
thousand watchers cost one `json.dumps` per language, and each consumer only forwards
the frame of its reader's language.
"""

import json
import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.utils import translation

from .event_text import with_text

log = logging.getLogger(__name__)


def fault_group(fault_id: int) -> str:
    return f"fault.{fault_id}"


def event_frame(message: dict) -> str:
    """The socket's text frame for one event, in the active language."""
    return json.dumps({"type": "event", "event": with_text(message)}, ensure_ascii=False)


def frames(message: dict) -> dict[str, str]:
    """The event's frame in every language the product speaks."""
    worded = {}
    for code, _name in settings.LANGUAGES:
        with translation.override(code):
            worded[code] = event_frame(message)
    return worded


def on_timeline_event(event) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    message = event.as_message()
    # At-most-once: a page that misses this catches up by seq when it reconnects.
    async_to_sync(layer.group_send)(
        fault_group(event.fault_id),
        {"type": "timeline.event", "seq": message["seq"], "event": message, "frames": frames(message)},
    )

"""Sends each committed timeline event to the pages watching that fault."""

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

log = logging.getLogger(__name__)


def fault_group(fault_id: int) -> str:
    return f"fault.{fault_id}"


def on_timeline_event(event) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    # At-most-once: a page that misses this catches up by seq when it reconnects.
    async_to_sync(layer.group_send)(
        fault_group(event.fault_id), {"type": "timeline.event", "event": event.as_message()}
    )

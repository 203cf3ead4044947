"""Channels: how each kind of message is sent, over the transports, and what the answer means.

`send(d)` carries one outbox row and returns `Sent`, or raises `TransportError` saying
whether the failure is permanent (refused), retryable, or ambiguous (may have left).
Every send gets NOTIFY_SEND_BUDGET seconds of HTTP in all, so that a hanging provider
holds a worker for a bounded time. Sits under the outbox; knows nothing of a fault's
lifecycle or of who should be paged.
"""

from django.conf import settings

from ..models import Channel
from ..transports.base import Sent, send_budget
from ..transports import dingtalk
from . import conference, group, robot
from .direct import can_reach, message_params, send_direct, transport_for

__all__ = ["can_reach", "has_probe", "message_params", "probe", "send", "transport_for"]

# Calls that need the group, the roster or the fault, not just an address.
_SENDERS = {
    Channel.DINGTALK_GROUP_CREATE: group.send_create,
    Channel.DINGTALK_GROUP_MEMBER_ADD: group.send_member_add,
    Channel.DINGTALK_CONFERENCE: conference.send,
    Channel.DINGTALK_ROBOT: robot.send,
}


def send(d) -> Sent:
    """Carry one outbox row. Raises TransportError like any transport."""
    with send_budget(settings.NOTIFY_SEND_BUDGET):
        return _SENDERS.get(d.channel, send_direct)(d)


def _dingtalk_probe() -> None:
    # A fresh access token changes nothing at DingTalk and proves that it answers.
    dingtalk.access_token(refresh=True)


# Harmless requests that tell whether a provider answers again, by transport.
_PROBES = {"dingtalk": _dingtalk_probe}


def has_probe(transport: str) -> bool:
    return transport in _PROBES


def probe(transport: str) -> None:
    """Make the provider's harmless request. Raises TransportError like any send."""
    with send_budget(settings.NOTIFY_SEND_BUDGET):
        _PROBES[transport]()

"""A business's notification group reached through its custom robot (webhook URL + secret)."""

import urllib.parse

from roster.models import NotificationGroup

from ..models import Delivery
from ..transports import dingtalk, sandbox
from ..transports.base import Sent, TransportError


def send(d: Delivery) -> Sent:
    group = NotificationGroup.objects.filter(pk=(d.payload or {}).get("notification_group")).first()
    if group is None or not group.webhook_url:
        raise TransportError("the notification group or its webhook is gone", permanent=True)
    if d.transport == "sandbox":
        return sandbox.send(d, address=group.webhook_url)
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(group.webhook_url).query)
    token = (query.get("access_token") or [""])[0]
    if not token:
        raise TransportError(f"the webhook of {group.name} has no access_token", permanent=True)
    return dingtalk.custom_robot_send(
        access_token=token, secret=group.webhook_secret, title=d.subject, text=d.body, msg_uuid=d.provider_key
    )

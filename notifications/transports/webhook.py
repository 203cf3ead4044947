"""A generic outgoing webhook: JSON, signed with HMAC-SHA256.

Receivers verify `X-WarRoom-Signature: sha256=<hex>` computed over
`<X-WarRoom-Timestamp>.<raw body>` with the shared secret, and de-duplicate by
`X-WarRoom-Delivery`, which stays the same when we send a message again.
"""

import hashlib
import hmac
import json

from django.conf import settings

from django.utils import timezone

from .base import Sent, TransportError, http_request


def configured() -> bool:
    return bool(settings.NOTIFY_WEBHOOK_URL)


def signature(secret: str, timestamp: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def send(*, url: str, payload: dict, delivery_id: str) -> Sent:
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    timestamp = str(int(timezone.now().timestamp()))
    headers = {
        "Content-Type": "application/json",
        "X-WarRoom-Delivery": delivery_id,
        "X-WarRoom-Timestamp": timestamp,
        "X-WarRoom-Signature": signature(settings.NOTIFY_WEBHOOK_SECRET, timestamp, body),
    }
    response = http_request("POST", url, data=body, headers=headers)
    if response.status_code < 300:
        return Sent(provider_id=delivery_id, delivered=True)
    message = f"webhook answered HTTP {response.status_code}"
    if response.status_code >= 500 or response.status_code in (408, 429):
        raise TransportError(message)
    raise TransportError(message, permanent=True)

"""DingTalk robots that reach people without the group: DING (an urgent app, SMS or phone
reminder from the app's robot), and the custom-robot webhook of simple setups.

Every function raises TransportError; see base.TransportError for what its flags mean.
"""

import base64
import hashlib
import hmac
import json
import urllib.parse

from django.conf import settings
from django.utils import timezone

from ..base import GATEWAY_ERRORS, Sent, TransportError, http_request, json_of
from .token import call

REMIND_APP, REMIND_SMS, REMIND_PHONE = 1, 2, 3


def ding_send(*, remind_type: int, user_ids: list[str], content: str) -> Sent:
    """DING the users in the app (1), by SMS (2) or by phone (3). No idempotency key."""
    body = {
        "robotCode": settings.DINGTALK_ROBOT_CODE,
        "remindType": remind_type,
        "receiverUserIdList": list(user_ids),
        "content": content,
    }
    data = call("/v1.0/robot/ding/send", body, doing="send the DING")
    failed = data.get("failedList") or {}
    if failed:
        raise TransportError(f"DingTalk refused the DING for {json.dumps(failed, ensure_ascii=False)}", permanent=True)
    return Sent(provider_id=data.get("openDingId", ""))


def custom_robot_sign(secret: str, timestamp_ms: int) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def custom_robot_send(*, access_token: str, secret: str, title: str, text: str, msg_uuid: str = "") -> Sent:
    """Markdown through a group's custom robot; `msg_uuid` de-duplicates on DingTalk's side."""
    timestamp = int(timezone.now().timestamp() * 1000)
    query = urllib.parse.urlencode(
        {"access_token": access_token, "timestamp": timestamp, "sign": custom_robot_sign(secret, timestamp)}
    )
    body = {"msgtype": "markdown", "markdown": {"title": title, "text": text}}
    if msg_uuid:
        body["msgUuid"] = msg_uuid
    response = http_request("POST", f"{settings.DINGTALK_OAPI_BASE}/robot/send?{query}", json=body)
    data = json_of(response)
    errcode = data.get("errcode")
    if response.status_code >= 500:
        raise TransportError(f"DingTalk robot: HTTP {response.status_code}", ambiguous=response.status_code in GATEWAY_ERRORS)
    if errcode == 410100:
        raise TransportError("DingTalk robot: throttled (20 messages a minute)", retry_after=60)
    if errcode not in (0, None) or response.status_code >= 400:
        raise TransportError(f"DingTalk robot: {errcode} {data.get('errmsg', '')}", permanent=True)
    return Sent(delivered=True)

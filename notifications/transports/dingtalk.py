"""DingTalk: the app's access token, scene groups, robot messages, the check-in card,
DING, video conferences, and the custom-robot webhook of simple setups.

Every function raises TransportError; see base.TransportError for what its flags mean.
"""

import base64
import hashlib
import hmac
import json
import logging
import urllib.parse

from django.conf import settings
from django.core.cache import cache

from django.utils import timezone

from .base import GATEWAY_ERRORS, Sent, TransportError, http_request, json_of

log = logging.getLogger(__name__)

# DingTalk says the token lives 7,200 s; renew well before, since workers share it.
TOKEN_MARGIN = 300

# New-API error codes and what they mean for us.
THROTTLED = {"Forbidden.AccessDenied.QpsLimitForAppkeyAndApi", "Forbidden.AccessDenied.QpsLimitForApi", "Throttling"}
PERMANENT = {"ding.serverquota.insufficient", "invalidClientIdOrSecret", "Forbidden.AccessDenied.AccessTokenPermissionDenied"}


def configured() -> bool:
    return bool(settings.DINGTALK_APP_KEY and settings.DINGTALK_APP_SECRET)


def _token_key() -> str:
    return f"dingtalk:token:{settings.DINGTALK_API_BASE}:{settings.DINGTALK_APP_KEY}"


def access_token(*, refresh: bool = False) -> str:
    """The app's access token, from the shared cache unless `refresh`.

    Raises TransportError, never ambiguous: no message goes with the token request.
    """
    if not refresh:
        token = _cached(cache.get, _token_key())
        if token:
            return token
    try:
        response = http_request(
            "POST",
            f"{settings.DINGTALK_API_BASE}/v1.0/oauth2/accessToken",
            json={"appKey": settings.DINGTALK_APP_KEY, "appSecret": settings.DINGTALK_APP_SECRET},
        )
    except TransportError as error:
        # Whatever became of the token request, the message it was for has not left: the
        # send is safe to retry, even on a channel without an idempotency key.
        raise TransportError(
            f"DingTalk could not get an access token: {error.message}", retry_after=error.retry_after
        ) from error
    data = json_of(response)
    if response.status_code != 200 or not data.get("accessToken"):
        raise _error(response, data, doing="get an access token", carries_message=False)
    ttl = max(int(data.get("expireIn", 7200)) - TOKEN_MARGIN, 60)
    _cached(cache.set, _token_key(), data["accessToken"], ttl)
    return data["accessToken"]


def _cached(operation, *args):
    """The token cache is a saving, not a dependency: with Redis down (restarting), go on
    without it. Failing here would leave a row whose request never left looking ambiguous."""
    try:
        return operation(*args)
    except Exception:
        log.warning("the DingTalk token cache is unavailable; going on without it", exc_info=True)
        return None


def _error(response, data: dict, *, doing: str, carries_message: bool = True) -> TransportError:
    code = str(data.get("code") or "")
    message = f"DingTalk could not {doing}: HTTP {response.status_code} {code} {data.get('message', '')}".strip()
    if code in THROTTLED or response.status_code == 429:
        return TransportError(message, retry_after=2)
    if code in PERMANENT:
        return TransportError(message, permanent=True)
    if response.status_code >= 500:
        # Behind a gateway's 502/504 DingTalk may have sent the message (rung the phone).
        return TransportError(message, ambiguous=carries_message and response.status_code in GATEWAY_ERRORS)
    if code == "InvalidAuthentication":
        return TransportError(message)  # still refused after a fresh token: try again later
    return TransportError(message, permanent=True)


def call(path: str, body: dict, *, doing: str, method: str = "POST") -> dict:
    """Call a new-style API; on InvalidAuthentication get a fresh token and try once more."""
    url = f"{settings.DINGTALK_API_BASE}{path}"
    for refresh in (False, True):
        headers = {"x-acs-dingtalk-access-token": access_token(refresh=refresh)}
        response = http_request(method, url, json=body, headers=headers)
        data = json_of(response)
        if response.status_code < 400:
            return data
        if data.get("code") == "InvalidAuthentication" and not refresh:
            continue
        raise _error(response, data, doing=doing)
    raise AssertionError("unreachable")


# --- groups -------------------------------------------------------------------------------


def scene_group_create(*, title: str, owner_user_id: str, user_ids: list[str], uuid: str, subadmin_ids: list[str] = ()) -> dict:
    """Create the fault's scene group; `uuid` makes a repeated request return the same group.

    Returns {"open_conversation_id", "chat_id"}.
    """
    body = {
        "title": title[:30],
        "template_id": settings.DINGTALK_SCENE_TEMPLATE_ID,
        "owner_user_id": owner_user_id,
        "user_ids": ",".join(user_ids),
        "subadmin_ids": ",".join(subadmin_ids),
        "uuid": uuid,
        "management_options": {},
    }
    return call("/v1.0/im/sceneGroup/create", body, doing="create the group")


def scene_group_add_members(*, open_conversation_id: str, user_ids: list[str]) -> None:
    data = call(
        "/v1.0/im/sceneGroup/member/add",
        {"open_conversation_id": open_conversation_id, "user_ids": ",".join(user_ids)},
        doing="add members to the group",
    )
    if data.get("success") is False:
        raise TransportError(f"DingTalk did not add {', '.join(user_ids)} to the group", permanent=True)


def group_message_send(*, open_conversation_id: str, title: str, text: str) -> Sent:
    """A markdown message from the robot to the group. No idempotency key exists."""
    body = {
        "robotCode": settings.DINGTALK_ROBOT_CODE,
        "openConversationId": open_conversation_id,
        "msgKey": "sampleMarkdown",
        "msgParam": json.dumps({"title": title, "text": text}, ensure_ascii=False),
    }
    data = call("/v1.0/robot/groupMessages/send", body, doing="send the group message")
    return Sent(provider_id=data.get("processQueryKey", ""), delivered=True)


def card_create_and_deliver(*, out_track_id: str, open_conversation_id: str, params: dict, at_user_ids: list[str] = ()) -> Sent:
    """Post the interactive check-in card into the group; `out_track_id` de-duplicates."""
    body = {
        "cardTemplateId": settings.DINGTALK_CARD_TEMPLATE_ID,
        "outTrackId": out_track_id,
        "callbackType": "HTTP",
        "callbackRouteKey": settings.DINGTALK_CARD_CALLBACK_ROUTE_KEY,
        "cardData": {"cardParamMap": {k: str(v) for k, v in params.items()}},
        "openSpaceId": f"dtv1.card//IM_GROUP.{open_conversation_id}",
        "imGroupOpenSpaceModel": {"supportForward": False},
        "imGroupOpenDeliverModel": {
            "robotCode": settings.DINGTALK_ROBOT_CODE,
            "atUserIds": {uid: uid for uid in at_user_ids},
        },
        "userIdType": 1,
    }
    data = call("/v1.0/card/instances/createAndDeliver", body, doing="deliver the check-in card")
    result = data.get("result") or {}
    for item in result.get("deliverResults") or []:
        if item.get("success") is False:
            raise TransportError(f"DingTalk did not deliver the card: {item.get('errorMsg', '')}", permanent=True)
    return Sent(provider_id=out_track_id, delivered=True)


def card_callback_register(*, callback_url: str) -> None:
    """Tell DingTalk where card clicks go; run once per deployment."""
    call(
        "/v1.0/card/callbacks/register",
        {
            "callbackRouteKey": settings.DINGTALK_CARD_CALLBACK_ROUTE_KEY,
            "callbackUrl": callback_url,
            "apiSecret": settings.DINGTALK_CARD_CALLBACK_SECRET,
        },
        doing="register the card callback",
    )


# --- people -------------------------------------------------------------------------------

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


def video_conference_create(*, host_union_id: str, title: str, invite_union_ids: list[str]) -> dict:
    """Start a video conference; the API takes unionIds, not userIds.

    Returns {"conferenceId", "externalLinkUrl", "roomCode", "phoneNumbers"}.
    """
    body = {"userId": host_union_id, "confTitle": title, "inviteUserIds": list(invite_union_ids), "inviteCaller": True}
    return call("/v1.0/conference/videoConferences", body, doing="start the video conference")


# --- custom robot (webhook with a signing secret) -------------------------------------------


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

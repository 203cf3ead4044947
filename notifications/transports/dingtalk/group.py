"""The fault's DingTalk group: the scene group and its members, the robot's messages to it,
the interactive check-in card, and the video conference.

Every function raises TransportError; see base.TransportError for what its flags mean.
"""

import json

from django.conf import settings

from ..base import Sent, TransportError
from .token import call

# DingTalk's answer to a createAndDeliver whose outTrackId already made a card.
CARD_EXISTS = "param.cardAlreadyExist"


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
    """Post the interactive check-in card into the group; `out_track_id` de-duplicates.

    A repeat of a request that made the card (its answer lost on the way back) is Sent too.
    """
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
    data = call(
        "/v1.0/card/instances/createAndDeliver", body, doing="deliver the check-in card", done_codes=frozenset({CARD_EXISTS})
    )
    if data.get("code") == CARD_EXISTS:
        # The card is in the group: createAndDeliver creates and delivers in one step, and
        # DingTalk refuses the repeat instead of delivering a second card.
        return Sent(provider_id=out_track_id, delivered=True)
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


def video_conference_create(*, host_union_id: str, title: str, invite_union_ids: list[str]) -> dict:
    """Start a video conference; the API takes unionIds, not userIds.

    Returns {"conferenceId", "externalLinkUrl", "roomCode", "phoneNumbers"}.
    """
    body = {"userId": host_union_id, "confTitle": title, "inviteUserIds": list(invite_union_ids), "inviteCaller": True}
    return call("/v1.0/conference/videoConferences", body, doing="start the video conference")

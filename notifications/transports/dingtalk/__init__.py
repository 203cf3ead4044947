"""DingTalk: the app's access token and the call every new-style API makes with it (token),
the fault's group with its messages, check-in card and video conference (group), and DING
and the custom-robot webhook of simple setups (robot). Callers use the names below.

Every function raises TransportError; see base.TransportError for what its flags mean.
"""

from .group import (
    card_callback_register,
    card_create_and_deliver,
    group_message_send,
    scene_group_add_members,
    scene_group_create,
    video_conference_create,
)
from .robot import REMIND_APP, REMIND_PHONE, REMIND_SMS, custom_robot_send, custom_robot_sign, ding_send
from .token import _token_key, access_token, call, configured

__all__ = [
    "REMIND_APP",
    "REMIND_PHONE",
    "REMIND_SMS",
    "_token_key",
    "access_token",
    "call",
    "card_callback_register",
    "card_create_and_deliver",
    "configured",
    "custom_robot_send",
    "custom_robot_sign",
    "ding_send",
    "group_message_send",
    "scene_group_add_members",
    "scene_group_create",
    "video_conference_create",
]

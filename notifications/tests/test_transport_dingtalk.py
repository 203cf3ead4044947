import base64
import hashlib
import hmac
import json
import urllib.parse

import pytest
from django.core.cache import cache

from notifications.transports import dingtalk
from notifications.transports.base import TransportError

pytestmark = pytest.mark.django_db

DING = "/v1.0/robot/ding/send"
CARD = "/v1.0/card/instances/createAndDeliver"
TOKEN = "/v1.0/oauth2/accessToken"


def test_it_gets_a_token_once_and_sends_it_on_every_call(providers):
    dingtalk.ding_send(remind_type=3, user_ids=["u1"], content="P1 #7 Checkout fails")
    dingtalk.ding_send(remind_type=2, user_ids=["u2"], content="P1 #7 Checkout fails")

    [token_call] = providers.calls(TOKEN)
    assert token_call.json == {"appKey": "fake-app-key", "appSecret": "fake-app-secret"}
    token = token_call.answer["accessToken"]
    dings = providers.calls(DING)
    assert [d.headers["x-acs-dingtalk-access-token"] for d in dings] == [token, token]
    assert dings[0].json == {
        "robotCode": "dingrobotfake",
        "remindType": 3,
        "receiverUserIdList": ["u1"],
        "content": "P1 #7 Checkout fails",
    }
    assert dings[1].json["remindType"] == 2


def test_it_refreshes_the_token_once_when_dingtalk_says_it_is_invalid(providers):
    dingtalk.ding_send(remind_type=1, user_ids=["u1"], content="hello")
    providers.expire_tokens()

    sent = dingtalk.ding_send(remind_type=1, user_ids=["u1"], content="hello again")

    assert sent.provider_id
    assert len(providers.calls(TOKEN)) == 2
    statuses = [c.status for c in providers.calls(DING)]
    assert statuses == [200, 401, 200]
    assert providers.calls(DING)[1].answer["code"] == "InvalidAuthentication"


def test_bad_app_credentials_are_a_permanent_error(providers, settings):
    settings.DINGTALK_APP_SECRET = "wrong"
    with pytest.raises(TransportError) as caught:
        dingtalk.ding_send(remind_type=1, user_ids=["u1"], content="x")
    assert caught.value.permanent
    assert "invalidClientIdOrSecret" in caught.value.message
    assert providers.calls(DING) == []


def test_no_ding_quota_is_permanent_and_throttling_is_not(providers):
    providers.fail(DING, "quota")
    with pytest.raises(TransportError) as quota:
        dingtalk.ding_send(remind_type=3, user_ids=["u1"], content="x")
    assert quota.value.permanent and "ding.serverquota.insufficient" in quota.value.message

    providers.fail(DING, "throttle")
    with pytest.raises(TransportError) as throttled:
        dingtalk.ding_send(remind_type=3, user_ids=["u1"], content="x")
    assert not throttled.value.permanent and throttled.value.retry_after


def test_a_user_in_the_failed_list_is_a_permanent_error(providers):
    providers.config.unknown_user_ids.add("gone")
    with pytest.raises(TransportError) as caught:
        dingtalk.ding_send(remind_type=3, user_ids=["gone"], content="x")
    assert caught.value.permanent


def test_it_creates_the_scene_group_once_per_uuid_and_adds_members(providers):
    first = dingtalk.scene_group_create(
        title="P1 #7 Checkout fails and everything else is on fire", owner_user_id="u1", user_ids=["u2", "u3"],
        uuid="fault-7-group", subadmin_ids=["u2"],
    )
    again = dingtalk.scene_group_create(title="P1 #7", owner_user_id="u1", user_ids=["u2", "u3"], uuid="fault-7-group")
    dingtalk.scene_group_add_members(open_conversation_id=first["open_conversation_id"], user_ids=["u4", "u5"])

    assert first == again
    create = providers.calls("/v1.0/im/sceneGroup/create")[0].json
    assert create == {
        "title": "P1 #7 Checkout fails and every",
        "template_id": "tpl-scene",
        "owner_user_id": "u1",
        "user_ids": "u2,u3",
        "subadmin_ids": "u2",
        "uuid": "fault-7-group",
        "management_options": {},
    }
    add = providers.calls("/v1.0/im/sceneGroup/member/add")[0].json
    assert add == {"open_conversation_id": first["open_conversation_id"], "user_ids": "u4,u5"}


def test_it_posts_markdown_to_the_group_as_a_json_string(providers):
    dingtalk.group_message_send(open_conversation_id="cid1", title="P1 #7", text="**Checkout fails**")
    [call] = providers.calls("/v1.0/robot/groupMessages/send")
    assert call.json["msgKey"] == "sampleMarkdown"
    assert call.json["robotCode"] == "dingrobotfake"
    assert call.json["openConversationId"] == "cid1"
    assert json.loads(call.json["msgParam"]) == {"title": "P1 #7", "text": "**Checkout fails**"}


def test_it_delivers_the_check_in_card_with_its_out_track_id(providers):
    sent = dingtalk.card_create_and_deliver(
        out_track_id="w0011223344556", open_conversation_id="cid1", params={"level": "P1", "fault": 7}, at_user_ids=["u1"]
    )
    assert sent.provider_id == "w0011223344556"
    [call] = providers.calls("/v1.0/card/instances/createAndDeliver")
    assert call.json == {
        "cardTemplateId": "tpl-card.schema",
        "outTrackId": "w0011223344556",
        "callbackType": "HTTP",
        "callbackRouteKey": "warroom-check-in",
        "cardData": {"cardParamMap": {"level": "P1", "fault": "7"}},
        "openSpaceId": "dtv1.card//IM_GROUP.cid1",
        "imGroupOpenSpaceModel": {"supportForward": False},
        "imGroupOpenDeliverModel": {"robotCode": "dingrobotfake", "atUserIds": {"u1": "u1"}},
        "userIdType": 1,
    }



def test_a_card_repeated_after_its_answer_was_lost_is_sent_and_exists_once(providers):
    # DingTalk makes the card, but its answer does not come back before the read timeout.
    providers.fail(CARD, "timeout")
    card = {"out_track_id": "w0011223344556", "open_conversation_id": "cid1", "params": {"level": "P1"}}
    with pytest.raises(TransportError) as lost:
        dingtalk.card_create_and_deliver(**card)
    assert lost.value.ambiguous

    sent = dingtalk.card_create_and_deliver(**card)

    assert sent.provider_id == "w0011223344556" and sent.delivered
    # DingTalk refused the repeat as param.cardAlreadyExist; one card was made.
    assert sorted((c.status, (c.answer or {}).get("code")) for c in providers.calls(CARD)) == [
        (200, None),
        (400, "param.cardAlreadyExist"),
    ]
    assert [c.json["outTrackId"] for c in providers.accepted(CARD)] == ["w0011223344556"]
    assert list(providers.dingtalk.cards) == ["w0011223344556"]


def test_a_card_refused_for_another_reason_is_still_a_permanent_error(providers):
    providers.fail(CARD, "permanent")
    with pytest.raises(TransportError) as caught:
        dingtalk.card_create_and_deliver(out_track_id="w0011223344557", open_conversation_id="cid1", params={})
    assert caught.value.permanent and "invalidParameter" in caught.value.message

def test_it_registers_the_card_callback(providers):
    dingtalk.card_callback_register(callback_url="https://warroom.example.com/notifications/dingtalk/card-callback/")
    [call] = providers.calls("/v1.0/card/callbacks/register")
    assert call.json == {
        "callbackRouteKey": "warroom-check-in",
        "callbackUrl": "https://warroom.example.com/notifications/dingtalk/card-callback/",
        "apiSecret": "fake-card-secret",
    }


def test_it_starts_a_video_conference_with_union_ids(providers):
    conference = dingtalk.video_conference_create(host_union_id="union1", title="P1 #7", invite_union_ids=["union2"])
    assert conference["externalLinkUrl"].startswith("https://")
    [call] = providers.calls("/v1.0/conference/videoConferences")
    assert call.json == {"userId": "union1", "confTitle": "P1 #7", "inviteUserIds": ["union2"], "inviteCaller": True}


def test_the_custom_robot_signs_its_requests(providers, clock):
    dingtalk.custom_robot_send(
        access_token="fake-robot-token", secret="fake-robot-secret", title="P1", text="**x**", msg_uuid="m-1"
    )
    [call] = providers.calls("robot/send")
    assert call.answer == {"errcode": 0, "errmsg": "ok"}
    timestamp = call.query["timestamp"]
    assert timestamp == str(int(clock.now().timestamp() * 1000))
    digest = hmac.new(b"fake-robot-secret", f"{timestamp}\nfake-robot-secret".encode(), hashlib.sha256).digest()
    assert call.query["sign"] == base64.b64encode(digest).decode()
    assert call.json == {"msgtype": "markdown", "markdown": {"title": "P1", "text": "**x**"}, "msgUuid": "m-1"}


def test_a_wrong_robot_secret_is_refused_with_errcode_310000(providers):
    with pytest.raises(TransportError) as caught:
        dingtalk.custom_robot_send(access_token="fake-robot-token", secret="wrong", title="P1", text="x")
    assert caught.value.permanent and "310000" in caught.value.message


def test_a_token_request_that_times_out_is_retryable_not_ambiguous(providers, monkeypatch):
    cache.delete(dingtalk._token_key())
    timeout_once(monkeypatch, TOKEN)
    with pytest.raises(TransportError) as caught:
        dingtalk.ding_send(remind_type=3, user_ids=["u1"], content="x")
    assert not caught.value.ambiguous and not caught.value.permanent
    assert providers.calls(DING) == []


def timeout_once(monkeypatch, path):
    """The next request to `path` times out on its way back, as a slow provider's would."""
    import requests
    import requests.adapters

    guarded_send = requests.adapters.HTTPAdapter.send
    pending = [path]

    def send(self, request, *args, **kwargs):
        if pending and urllib.parse.urlsplit(request.url).path == pending[0]:
            pending.pop()
            raise requests.ReadTimeout(f"read timed out: {request.url}")
        return guarded_send(self, request, *args, **kwargs)

    monkeypatch.setattr(requests.adapters.HTTPAdapter, "send", send)


@pytest.mark.parametrize("status", [502, 504])
def test_a_gateway_error_may_have_rung_the_phone_so_it_is_ambiguous(providers, gateway, settings, status):
    gateway.status = status
    settings.DINGTALK_API_BASE = gateway.url
    cache.set(dingtalk._token_key(), "token-from-before", 60)
    with pytest.raises(TransportError) as caught:
        dingtalk.ding_send(remind_type=3, user_ids=["u1"], content="x")
    assert caught.value.ambiguous and not caught.value.permanent
    assert gateway.seen == [DING]


def test_a_gateway_error_on_the_token_request_is_not_ambiguous(providers, gateway, settings):
    settings.DINGTALK_API_BASE = gateway.url
    cache.delete(dingtalk._token_key())
    with pytest.raises(TransportError) as caught:
        dingtalk.ding_send(remind_type=3, user_ids=["u1"], content="x")
    assert not caught.value.ambiguous and not caught.value.permanent
    assert gateway.seen == [TOKEN]

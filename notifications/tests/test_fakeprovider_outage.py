"""The loopback provider's outages, and the control endpoints through which a fault drill
running it as another process takes providers down and counts what they accepted."""

import pytest
import requests

from notifications.transports import aliyun_sms, dingtalk
from notifications.transports.base import TransportError
from tools.fakeprovider import FakeProvider

pytestmark = pytest.mark.django_db

TOKEN = "/v1.0/oauth2/accessToken"
DING = "/v1.0/robot/ding/send"
CARD = "/v1.0/card/instances/createAndDeliver"


def ding():
    return dingtalk.ding_send(remind_type=3, user_ids=["u1"], content="P1 #7 Checkout fails")


def sms(out_id):
    return aliyun_sms.send(phone="+8613800000001", params={"fault": "#7"}, out_id=out_id)


def control(fake, method, name, body=None):
    response = requests.request(method, f"{fake.url}/_control/{name}", json=body, timeout=5)
    return response.status_code, response.json()


def test_an_outage_answers_every_provider_with_503_until_it_ends(providers):
    providers.outage("5xx")
    for send in (ding, lambda: sms("w-sms-1")):
        with pytest.raises(TransportError) as caught:
            send()
        # The provider said it did nothing: safe to retry, never a reason to give up.
        assert not caught.value.permanent and not caught.value.ambiguous

    assert [(r.api, r.status, r.outage) for r in providers.outage_calls()] == [(TOKEN, 503, "5xx"), ("SendSms", 503, "5xx")]
    assert providers.accepted() == []

    assert providers.outage(None) is None
    ding()
    sms("w-sms-2")
    assert [r.api for r in providers.accepted()] == [TOKEN, DING, "SendSms"]
    assert len(providers.outage_calls()) == 2


def test_a_hanging_provider_times_the_client_out_without_holding_up_the_other(providers):
    ding()  # the token is cached now, so the DING itself meets the outage
    providers.outage("hang", provider="dingtalk")

    with pytest.raises(TransportError) as caught:
        ding()
    assert caught.value.ambiguous  # a read timeout: the request had left

    sms("w-sms-1")  # Alibaba Cloud answers while DingTalk holds its request
    [held] = providers.outage_calls(DING)
    assert held.status == 0 and not held.finished.is_set()
    assert [r.api for r in providers.accepted()] == [TOKEN, DING, "SendSms"]

    providers.outage(None)
    assert held.finished.wait(10)
    assert held.status == 503 and held.answer["code"] == "ServiceUnavailable" and not held.accepted
    ding()
    assert len(providers.accepted(DING)) == 2


def test_an_outage_for_some_seconds_ends_by_itself_and_answers_what_it_held(providers):
    # Longer than the client's read timeout (0.5 s), so that the client gives up first.
    providers.outage("hang", provider="aliyun", seconds=2)
    with pytest.raises(TransportError) as caught:
        sms("w-sms-1")
    assert caught.value.ambiguous

    [held] = providers.outage_calls("SendSms")
    assert held.finished.wait(10)
    assert held.status == 503 and providers.outage_state() is None
    sms("w-sms-2")
    assert [r.query["OutId"] for r in providers.accepted("SendSms")] == ["w-sms-2"]


def test_stopping_the_server_answers_the_requests_it_held():
    fake = FakeProvider().start()
    fake.outage("hang")
    with pytest.raises(requests.ReadTimeout):
        requests.post(f"{fake.url}/hooks/warroom", json={"text": "P1 #7"}, timeout=0.3)
    [held] = fake.outage_calls("webhook")

    fake.stop()

    assert held.finished.wait(10) and held.status == 503


def test_another_process_takes_one_provider_down_and_back_up_over_http(providers):
    status, answer = control(providers, "POST", "outage", {"mode": "5xx", "provider": "aliyun", "seconds": 120})
    assert status == 200
    assert answer["outage"]["mode"] == "5xx" and answer["outage"]["provider"] == "aliyun"
    assert 0 < answer["outage"]["seconds_left"] <= 120
    assert control(providers, "GET", "outage")[1]["outage"]["provider"] == "aliyun"

    with pytest.raises(TransportError):
        sms("w-sms-1")
    ding()  # DingTalk stays up

    assert control(providers, "POST", "outage", {"mode": None}) == (200, {"outage": None})
    sms("w-sms-2")
    assert [r.query["OutId"] for r in providers.accepted("SendSms")] == ["w-sms-2"]
    # Control requests are neither calls to a provider nor unexpected ones.
    assert not [r for r in providers.calls() if r.path.startswith("/_control/")]


def test_the_calls_endpoint_lists_what_the_providers_accepted_apart_from_what_an_outage_answered(providers):
    card = {"out_track_id": "w-card-1", "open_conversation_id": "cid1", "params": {"level": "P1"}}
    dingtalk.card_create_and_deliver(**card)
    dingtalk.card_create_and_deliver(**card)  # a repeat: DingTalk refuses it, nothing new
    ding()
    sms("w-sms-1")
    providers.outage("5xx", provider="aliyun")
    with pytest.raises(TransportError):
        sms("w-sms-2")

    status, answer = control(providers, "GET", "calls")

    assert status == 200
    assert [(c["api"], c["fields"]) for c in answer["accepted"] if c["api"] != TOKEN] == [
        (CARD, {"outTrackId": "w-card-1", "openSpaceId": "dtv1.card//IM_GROUP.cid1", "cardData": {"cardParamMap": {"level": "P1"}}}),
        (DING, {"remindType": 3, "receiverUserIdList": ["u1"], "content": "P1 #7 Checkout fails"}),
        ("SendSms", {"PhoneNumbers": "8613800000001", "TemplateCode": "SMS_000001", "TemplateParam": '{"fault":"#7"}', "OutId": "w-sms-1"}),
    ]
    [accepted_sms] = [c for c in answer["accepted"] if c["api"] == "SendSms"]
    assert accepted_sms["status"] == 200 and accepted_sms["answer"]["BizId"]
    assert [(c["api"], c["status"], c["outage"], c["fields"]["OutId"]) for c in answer["outage"]] == [
        ("SendSms", 503, "5xx", "w-sms-2")
    ]
    only_sms = control(providers, "GET", "calls?api=SendSms")[1]
    assert [c["fields"]["OutId"] for c in only_sms["accepted"]] == ["w-sms-1"]


@pytest.mark.parametrize(
    "body",
    [
        {"mode": "down"},
        {"mode": "5xx", "provider": "twilio"},
        {"mode": "hang", "seconds": -1},
        {"mode": "hang", "seconds": "soon"},
        {"provider": "aliyun"},
        {"mode": "5xx", "minutes": 2},
        ["5xx"],
    ],
)
def test_a_bad_outage_request_is_refused_and_changes_nothing(fake, body):
    status, answer = control(fake, "POST", "outage", body)
    assert status == 400 and answer["error"]
    assert fake.outage_state() is None
    assert fake.calls() == []


def test_an_unknown_control_is_a_404_and_not_a_call(fake):
    assert control(fake, "POST", "calls")[0] == 404
    assert control(fake, "GET", "reset")[0] == 404
    assert fake.calls() == [] and fake.unexpected() == []

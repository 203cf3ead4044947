"""The check-in card's callback and the Alibaba Cloud receipt endpoints."""

import json
from datetime import timedelta

import pytest

from incidents.models import RoleAssignment, TimelineEvent
from notifications.outbox.attempts import delivery_attempt
from notifications.outbox.rows import delivery_create, person_page
from notifications.models import Channel, Delivery
from tools.fakeprovider import FakeProvider

from . import factories
from .factories import M

pytestmark = pytest.mark.django_db

CARD_URL = "/notifications/dingtalk/card-callback/"
SMS_URL = "/notifications/receipts/receipt-secret/aliyun/sms/"
VOICE_URL = "/notifications/receipts/receipt-secret/aliyun/voice/"
Status = Delivery.Status


@pytest.fixture
def card(providers, clock):
    li = factories.person("Li Lei")
    fault = factories.fault(commander=li)
    d = delivery_create(
        fault=fault, channel=Channel.DINGTALK_CARD, target="cidGroup1", idempotency_key=f"fault:{fault.pk}:card",
        payload={"params": {"level": "P1"}},
    )
    delivery_attempt(delivery_id=d.pk)
    return d, li


def click(client, fake, out_track_id, user_id, **kw):
    body, headers = fake.card_click(out_track_id, user_id, **kw)
    return client.post(CARD_URL, body, content_type="application/json", headers=headers)


def check_ins(fault):
    return TimelineEvent.objects.filter(fault=fault, kind="role.checked_in")


def test_a_click_on_the_card_checks_the_person_in(client, providers, card, clock):
    d, li = card
    timestamp = int(clock.now().timestamp() * 1000)
    response = click(client, providers, d.provider_key, li.dingtalk_user_id, timestamp_ms=timestamp)

    assert response.status_code == 200
    [event] = check_ins(d.fault)
    assert event.data["via"] == "card" and event.data["person"]["name"] == "Li Lei"
    assert RoleAssignment.objects.get(fault=d.fault, person=li).checked_in_at == clock.now()


def test_repeated_clicks_check_in_once(client, providers, card, clock):
    d, li = card
    timestamp = int(clock.now().timestamp() * 1000)
    for _ in range(3):
        assert click(client, providers, d.provider_key, li.dingtalk_user_id, timestamp_ms=timestamp).status_code == 200
    assert check_ins(d.fault).count() == 1


@pytest.mark.parametrize(
    "headers, message",
    [
        ({}, "Missing x-ddpaas-signature"),
        ({"x-ddpaas-signature-timestamp": "1700000000000", "x-ddpaas-signature": "bm90IGl0"}, "does not match"),
        ({"x-ddpaas-signature-timestamp": "1700000000000", "x-ddpaas-signature": "签名é"}, "does not match"),
        ({"x-ddpaas-signature-timestamp": "时间", "x-ddpaas-signature": "bm90IGl0"}, "does not match"),
    ],
)
def test_a_click_without_a_valid_signature_is_refused(client, providers, card, headers, message):
    d, li = card
    body, _ = providers.card_click(d.provider_key, li.dingtalk_user_id)
    response = client.post(CARD_URL, body, content_type="application/json", headers=headers)
    assert response.status_code == 401 and message in response.json()["message"]
    assert check_ins(d.fault).count() == 0


def test_a_click_signed_with_another_secret_is_refused(client, providers, card, clock):
    d, li = card
    response = click(
        client, providers, d.provider_key, li.dingtalk_user_id,
        timestamp_ms=int(clock.now().timestamp() * 1000), secret="someone-elses",
    )
    assert response.status_code == 401


def test_an_old_signed_click_is_refused(client, providers, card, clock):
    d, li = card
    old = int((clock.now() - timedelta(hours=2)).timestamp() * 1000)
    response = click(client, providers, d.provider_key, li.dingtalk_user_id, timestamp_ms=old)
    assert response.status_code == 401 and "hour" in response.json()["message"]


def test_bad_clicks_get_a_4xx_with_a_message(client, providers, card, clock):
    d, li = card
    now = int(clock.now().timestamp() * 1000)
    unknown_card = click(client, providers, "w-not-ours", li.dingtalk_user_id, timestamp_ms=now)
    assert unknown_card.status_code == 400 and "not one of ours" in unknown_card.json()["message"]
    stranger = click(client, providers, d.provider_key, "stranger", timestamp_ms=now)
    assert stranger.status_code == 400 and "not in the roster" in stranger.json()["message"]
    han = factories.person("Han Meimei")
    no_role = click(client, providers, d.provider_key, han.dingtalk_user_id, timestamp_ms=now)
    assert no_role.status_code == 400 and "has no role" in no_role.json()["message"]
    _, headers = providers.card_click(d.provider_key, li.dingtalk_user_id, timestamp_ms=now)
    not_json = client.post(CARD_URL, b"{", content_type="application/json", headers=headers)
    assert not_json.status_code == 400
    assert client.get(CARD_URL).status_code == 405


# --- receipts -----------------------------------------------------------------------------


def sent_page(providers, channel):
    han = factories.person("Han Meimei", methods=(channel, M.EMAIL))
    fault = factories.fault(commander=han)
    d = person_page(fault=fault, person=han, page_key=f"p{fault.pk}", subject="P1", body="Check in")
    delivery_attempt(delivery_id=d.pk)
    d.refresh_from_db()
    assert d.status == Status.SENT
    return d


def outcomes(fault):
    return list(TimelineEvent.objects.filter(fault=fault, kind="delivery.outcome").values_list("data__text", flat=True))


def test_an_sms_receipt_marks_it_delivered_once(client, providers, clock):
    d = sent_page(providers, M.ALIYUN_SMS)
    items = [FakeProvider.sms_report(d.provider_key, d.person.phone, biz_id=d.provider_id)]
    for _ in range(2):  # Alibaba Cloud repeats pushes
        response = client.post(SMS_URL, json.dumps(items), content_type="application/json")
        assert response.status_code == 200 and response.json() == {"code": 0, "msg": "接收成功"}

    d.refresh_from_db()
    assert d.status == Status.DELIVERED and d.receipt["err_code"] == "DELIVERED"
    assert outcomes(d.fault) == ["SMS to Han Meimei sent", "SMS to Han Meimei delivered"]


def test_an_unanswered_call_is_recorded_and_the_next_method_is_used(client, providers, clock):
    d = sent_page(providers, M.ALIYUN_VOICE)
    items = [FakeProvider.voice_report(d.provider_key, answered=False, call_id=d.provider_id)]
    response = client.post(VOICE_URL, json.dumps(items), content_type="application/json")
    assert response.json() == {"code": 0, "msg": "接收成功"}

    d.refresh_from_db()
    assert d.status == Status.FAILED
    assert outcomes(d.fault)[-1] == "Voice call to Han Meimei not answered (用户未接)"
    assert Delivery.objects.get(page_key=d.page_key, method_index=1).channel == Channel.EMAIL


def test_an_answered_call_is_recorded(client, providers, clock):
    d = sent_page(providers, M.ALIYUN_VOICE)
    client.post(VOICE_URL, json.dumps([FakeProvider.voice_report(d.provider_key)]), content_type="application/json")
    d.refresh_from_db()
    assert d.status == Status.DELIVERED
    assert outcomes(d.fault)[-1] == "Voice call to Han Meimei answered"


def test_receipts_need_the_secret_path_and_a_json_array(client, providers):
    wrong = client.post("/notifications/receipts/guess/aliyun/sms/", "[]", content_type="application/json")
    assert wrong.status_code == 404
    not_json = client.post(SMS_URL, "nope", content_type="application/json")
    assert not_json.status_code == 400 and not_json.json()["code"] == 1
    not_list = client.post(SMS_URL, "[1, 2]", content_type="application/json")
    assert not_list.status_code == 400
    unknown = client.post(SMS_URL, json.dumps([FakeProvider.sms_report("w-unknown")]), content_type="application/json")
    assert unknown.json() == {"code": 0, "msg": "接收成功"}


def test_receipts_are_off_without_a_secret(client, settings):
    settings.ALIYUN_RECEIPT_SECRET = ""
    assert client.post("/notifications/receipts//aliyun/sms/", "[]", content_type="application/json").status_code == 404


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_a_receipt_with_nan_or_infinity_is_a_400_not_a_500(client, providers, clock, number):
    d = sent_page(providers, M.ALIYUN_SMS)
    body = '[{"out_id": "%s", "success": true, "send_time": %s}]' % (d.provider_key, number)
    response = client.post(SMS_URL, body, content_type="application/json")
    assert response.status_code == 400 and response.json()["code"] == 1
    d.refresh_from_db()
    assert d.status == Status.SENT  # the provider sends it again, in proper JSON


def test_deeply_nested_json_is_a_400_on_receipts_and_on_the_card_callback(client, providers, card, clock):
    deep = "[" * 5000 + "]" * 5000
    receipt = client.post(SMS_URL, deep, content_type="application/json")
    assert receipt.status_code == 400 and "nested too deeply" in receipt.json()["msg"]
    d, li = card
    _, headers = providers.card_click(d.provider_key, li.dingtalk_user_id, timestamp_ms=int(clock.now().timestamp() * 1000))
    click = client.post(CARD_URL, deep, content_type="application/json", headers=headers)
    assert click.status_code == 400 and "nested too deeply" in click.json()["message"]

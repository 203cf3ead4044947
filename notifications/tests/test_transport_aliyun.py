import hashlib
import json
import re

import pytest

from notifications.transports import acs, aliyun_sms, aliyun_voice
from notifications.transports.base import TransportError

pytestmark = pytest.mark.django_db


def test_send_sms_puts_its_parameters_in_the_signed_query(providers, clock):
    sent = aliyun_sms.send(phone="+8613800000001", params={"fault": "#7", "level": "P1", "title": "支付失败"}, out_id="w00112233445566")

    [call] = providers.calls("SendSms")
    assert call.status == 200 and call.answer["Code"] == "OK"  # the server recomputed the signature
    assert sent.provider_id == call.answer["BizId"]
    assert call.method == "POST" and call.path == "/" and call.body == b""
    assert call.query == {
        "PhoneNumbers": "8613800000001",
        "SignName": "战情室",
        "TemplateCode": "SMS_000001",
        "TemplateParam": '{"fault":"#7","level":"P1","title":"支付失败"}',
        "OutId": "w00112233445566",
    }
    h = call.headers
    assert h["x-acs-action"] == "SendSms" and h["x-acs-version"] == "2017-05-25"
    assert h["x-acs-date"] == clock.now().strftime("%Y-%m-%dT%H:%M:%SZ")
    assert h["x-acs-content-sha256"] == hashlib.sha256(b"").hexdigest()
    assert re.fullmatch(
        r"ACS3-HMAC-SHA256 Credential=fake-access-key-id,"
        r"SignedHeaders=host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version,"
        r"Signature=[0-9a-f]{64}",
        h["authorization"],
    )


def test_the_signature_matches_a_hand_computed_canonical_request():
    headers = acs.sign(
        method="POST", host="dysmsapi.aliyuncs.com", action="SendSms",
        params={"PhoneNumbers": "8613800000001", "SignName": "a b*", "OutId": "x~"},
        access_key_id="ak", secret="sk", date="2026-01-01T00:00:00Z", nonce="n1",
    )
    empty = hashlib.sha256(b"").hexdigest()
    canonical = "\n".join([
        "POST", "/", "OutId=x~&PhoneNumbers=8613800000001&SignName=a%20b%2A",
        f"host:dysmsapi.aliyuncs.com\nx-acs-action:SendSms\nx-acs-content-sha256:{empty}\n"
        "x-acs-date:2026-01-01T00:00:00Z\nx-acs-signature-nonce:n1\nx-acs-version:2017-05-25\n",
        "host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version",
        empty,
    ])
    import hmac

    to_sign = "ACS3-HMAC-SHA256\n" + hashlib.sha256(canonical.encode()).hexdigest()
    expected = hmac.new(b"sk", to_sign.encode(), hashlib.sha256).hexdigest()
    assert headers["Authorization"].endswith(f"Signature={expected}")


def test_a_wrong_secret_is_refused_with_the_providers_error_shape(providers, settings):
    settings.ALIYUN_ACCESS_KEY_SECRET = "wrong"
    with pytest.raises(TransportError) as caught:
        aliyun_sms.send(phone="+8613800000001", params={}, out_id="w1")
    assert caught.value.permanent
    [call] = providers.calls("SendSms")
    assert call.status == 400
    assert set(call.answer) == {"RequestId", "Message", "Recommend", "HostId", "Code"}
    assert call.answer["Code"] == "SignatureDoesNotMatch"


def test_an_unknown_access_key_is_refused(providers, settings):
    settings.ALIYUN_ACCESS_KEY_ID = "nobody"
    with pytest.raises(TransportError) as caught:
        aliyun_voice.call(phone="+8613800000001", params={}, out_id="w1")
    assert caught.value.permanent and "InvalidAccessKeyId.NotFound" in caught.value.message


def test_business_limit_control_is_retried_later_and_an_illegal_number_is_not(providers):
    providers.fail("SendSms", "throttle")
    with pytest.raises(TransportError) as throttled:
        aliyun_sms.send(phone="+8613800000001", params={}, out_id="w1")
    assert not throttled.value.permanent and throttled.value.retry_after == 60

    providers.fail("SendSms", "permanent")
    with pytest.raises(TransportError) as illegal:
        aliyun_sms.send(phone="+8613800000001", params={}, out_id="w1")
    assert illegal.value.permanent and "isv.MOBILE_NUMBER_ILLEGAL" in illegal.value.message


def test_a_hang_longer_than_the_timeout_is_ambiguous(providers):
    providers.fail("SendSms", "timeout")
    with pytest.raises(TransportError) as caught:
        aliyun_sms.send(phone="+8613800000001", params={}, out_id="w1")
    assert caught.value.ambiguous and not caught.value.permanent


def test_a_5xx_is_retried(providers):
    providers.fail("SingleCallByTts", "5xx")
    with pytest.raises(TransportError) as caught:
        aliyun_voice.call(phone="+8613800000001", params={}, out_id="w1")
    assert not caught.value.permanent and not caught.value.ambiguous


@pytest.mark.parametrize("status", [502, 504])
def test_a_gateway_error_may_have_rung_the_phone_so_it_is_ambiguous(providers, gateway, settings, status):
    gateway.status = status
    settings.ALIYUN_VOICE_ENDPOINT = gateway.url
    with pytest.raises(TransportError) as caught:
        aliyun_voice.call(phone="+8613800000001", params={}, out_id="w1")
    assert caught.value.ambiguous and not caught.value.permanent
    assert len(gateway.seen) == 1


def test_single_call_by_tts_dials_the_national_number_with_an_out_id(providers):
    sent = aliyun_voice.call(phone="+8613800000001", params={"fault": "#7"}, out_id="w00112233445566")
    [call] = providers.calls("SingleCallByTts")
    assert call.answer["Code"] == "OK" and sent.provider_id == call.answer["CallId"]
    assert call.query == {
        "CalledNumber": "13800000001",
        "CalledShowNumber": "057100000000",
        "TtsCode": "TTS_000001",
        "TtsParam": json.dumps({"fault": "#7"}, separators=(",", ":")),
        "PlayTimes": "2",
        "OutId": "w00112233445566",
    }
    assert len(call.query["OutId"].encode()) <= 15

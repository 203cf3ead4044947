"""Alibaba Cloud voice notification (SingleCallByTts). The outcome arrives as a VoiceReport."""

from django.conf import settings

from . import acs
from .base import Sent


def configured() -> bool:
    return acs.configured() and bool(settings.ALIYUN_TTS_CODE)


def call(*, phone: str, params: dict, out_id: str, play_times: int = 2) -> Sent:
    """Ring one number and read the TTS template. Raises TransportError.

    No idempotency key: `out_id` (≤15 bytes) only comes back in the receipt.
    """
    data = acs.call(
        settings.ALIYUN_VOICE_ENDPOINT,
        "SingleCallByTts",
        {
            "CalledNumber": _national(phone),
            "CalledShowNumber": settings.ALIYUN_VOICE_SHOW_NUMBER,
            "TtsCode": settings.ALIYUN_TTS_CODE,
            "TtsParam": acs.template_param(params),
            "PlayTimes": str(play_times),
            "OutId": out_id,
        },
    )
    return Sent(provider_id=data.get("CallId", ""))


def _national(phone: str) -> str:
    # Voice notifications reach mainland numbers only, written without the country code.
    return phone[3:] if phone.startswith("+86") else phone.lstrip("+")

"""Alibaba Cloud SMS (SendSms). The outcome arrives later as an SmsReport receipt."""

from django.conf import settings

from . import acs
from .base import Sent


def configured() -> bool:
    return acs.configured() and bool(settings.ALIYUN_SMS_SIGN_NAME and settings.ALIYUN_SMS_TEMPLATE_CODE)


def send(*, phone: str, params: dict, out_id: str) -> Sent:
    """Send the template SMS to one number. Raises TransportError.

    SendSms has no idempotency key: `out_id` only comes back in the receipt.
    """
    data = acs.call(
        settings.ALIYUN_SMS_ENDPOINT,
        "SendSms",
        {
            "PhoneNumbers": phone.lstrip("+"),
            "SignName": settings.ALIYUN_SMS_SIGN_NAME,
            "TemplateCode": settings.ALIYUN_SMS_TEMPLATE_CODE,
            "TemplateParam": acs.template_param(params),
            "OutId": out_id,
        },
    )
    return Sent(provider_id=data.get("BizId", ""))

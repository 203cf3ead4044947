"""Messages that need only an address: DING, SMS, voice, email, the webhook, and the
app robot's messages and card in a group whose openConversationId is known."""

from django.conf import settings

from incidents.models import Fault
from roster.models import Person

from ..models import Channel, Delivery
from ..transports import aliyun_sms, aliyun_voice, dingtalk, email, sandbox, webhook
from ..transports.base import Sent, TransportError

DING_REMIND = {
    Channel.DINGTALK_DING_APP: dingtalk.REMIND_APP,
    Channel.DINGTALK_DING_SMS: dingtalk.REMIND_SMS,
    Channel.DINGTALK_DING_PHONE: dingtalk.REMIND_PHONE,
}

DINGTALK_CHANNELS = {
    Channel.DINGTALK_GROUP_MESSAGE,
    Channel.DINGTALK_CARD,
    Channel.DINGTALK_ROBOT,
    Channel.DINGTALK_GROUP_CREATE,
    Channel.DINGTALK_GROUP_MEMBER_ADD,
    Channel.DINGTALK_CONFERENCE,
}


def transport_for(channel: str) -> str:
    """The module that will carry `channel`: its provider when configured, else the sandbox."""
    if channel in DING_REMIND or channel in DINGTALK_CHANNELS:
        # Custom robots need no app credentials, but they ride on the same switch so that
        # a demo with no DingTalk configured never reaches out to a group's real webhook.
        return "dingtalk" if dingtalk.configured() else "sandbox"
    configured = {
        Channel.ALIYUN_SMS: aliyun_sms.configured,
        Channel.ALIYUN_VOICE: aliyun_voice.configured,
        Channel.EMAIL: email.configured,
        Channel.WEBHOOK: webhook.configured,
    }[channel]
    return channel if configured() else "sandbox"


def can_reach(person: Person, channel: str) -> bool:
    """Whether the person has the contact detail `channel` needs."""
    if channel in DING_REMIND:
        return bool(person.dingtalk_user_id)
    if channel in (Channel.ALIYUN_SMS, Channel.ALIYUN_VOICE):
        return bool(person.phone)
    if channel == Channel.EMAIL:
        return bool(person.email)
    return False


def message_params(fault: Fault) -> dict:
    """The variables of the SMS and TTS templates: ${fault} ${level} ${title}."""
    # Template variables are short on Alibaba Cloud; the link is in the group and the email.
    return {"fault": f"#{fault.pk}", "level": fault.get_level_display(), "title": fault.title[:20]}


def send_direct(d: Delivery) -> Sent:
    if d.transport == "sandbox":
        return sandbox.send(d, address=_address(d))
    person = d.person
    if d.channel in DING_REMIND:
        return dingtalk.ding_send(remind_type=DING_REMIND[d.channel], user_ids=[person.dingtalk_user_id], content=d.body)
    params = d.payload.get("params") or {}
    if d.channel == Channel.ALIYUN_SMS:
        return aliyun_sms.send(phone=person.phone, params=params, out_id=d.provider_key)
    if d.channel == Channel.ALIYUN_VOICE:
        return aliyun_voice.call(phone=person.phone, params=params, out_id=d.provider_key)
    if d.channel == Channel.EMAIL:
        return email.send(to=_address(d), subject=d.subject, body=d.body, message_id=d.provider_key)
    if d.channel == Channel.DINGTALK_GROUP_MESSAGE:
        return dingtalk.group_message_send(open_conversation_id=d.target, title=d.subject, text=d.body)
    if d.channel == Channel.DINGTALK_CARD:
        return dingtalk.card_create_and_deliver(
            out_track_id=d.provider_key,
            open_conversation_id=d.target,
            params=d.payload.get("params") or {},
            at_user_ids=d.payload.get("at_user_ids") or [],
        )
    if d.channel == Channel.WEBHOOK:
        body = {"fault": d.fault_id, "subject": d.subject, "body": d.body, **(d.payload or {})}
        return webhook.send(url=_address(d), payload=body, delivery_id=d.idempotency_key)
    raise TransportError(f"no transport for {d.channel}", permanent=True)


def _address(d: Delivery) -> str:
    person = d.person
    if person is None:
        return d.target or (settings.NOTIFY_WEBHOOK_URL if d.channel == Channel.WEBHOOK else "")
    if d.channel in DING_REMIND:
        return person.dingtalk_user_id
    if d.channel == Channel.EMAIL:
        return person.email
    return person.phone

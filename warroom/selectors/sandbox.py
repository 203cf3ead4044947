"""What went through the sandbox transport instead of a provider: the group, the card, the calls.

With no provider credentials the product still runs the whole response; the page then
shows, in place of DingTalk and the phone, what would have been sent and the check-in
card one can click.
"""

import re
from dataclasses import dataclass, field

from django.utils.translation import gettext as _

from incidents.models import Fault
from incidents.selectors import has_checked_in
from notifications import selectors as notification_selectors
from notifications.models import Channel, CollaborationGroup, Delivery, SandboxMessage
from roster.models import Person

from .collaboration import group_member_ids

SANDBOX_ON_PAGE = 30

# How the page draws each channel's message.
_SANDBOX_WHAT = {
    Channel.DINGTALK_GROUP_CREATE: "group",
    Channel.DINGTALK_GROUP_MEMBER_ADD: "member",
    Channel.DINGTALK_CARD: "card",
    Channel.DINGTALK_DING_PHONE: "call",
    Channel.ALIYUN_VOICE: "call",
    Channel.DINGTALK_DING_SMS: "text",
    Channel.DINGTALK_DING_APP: "text",
    Channel.ALIYUN_SMS: "text",
    Channel.EMAIL: "text",
    Channel.DINGTALK_GROUP_MESSAGE: "group_message",
    Channel.DINGTALK_ROBOT: "group_message",
    Channel.DINGTALK_CONFERENCE: "conference",
}


@dataclass
class SandboxItem:
    message: SandboxMessage
    what: str  # "group" | "member" | "card" | "call" | "text" | "group_message" | "conference" | "other"
    label: str  # the channel, in the reader's language
    recipient: str
    members: list[str] = field(default_factory=list)
    anchor: str = ""
    text: str = ""


@dataclass
class SandboxCard:
    """The check-in card as it would look in the DingTalk group."""

    delivery: Delivery
    message: SandboxMessage
    params: dict
    members: list[dict]  # {"name", "checked_in"}
    can_check_in: bool


def sandbox_view(fault: Fault, me: Person | None, i_must_check_in: bool) -> dict:
    """The sandbox's messages, newest first, and the newest check-in card (None if there is none)."""
    messages = notification_selectors.latest_sandbox_messages(fault, SANDBOX_ON_PAGE)
    if not messages:
        return {"sandbox": [], "sandbox_card": None}
    group = CollaborationGroup.objects.filter(fault=fault).first()
    names = {m["user_id"]: m["name"] for m in (group.members if group else []) if m.get("user_id")}
    items = []
    for m in messages:
        what = _SANDBOX_WHAT.get(m.channel, "other")
        item = SandboxItem(
            message=m,
            what=what,
            label=str(Channel(m.channel).label) if m.channel in Channel.values else m.channel,
            recipient=m.recipient,
            text=_as_shown(m.body) if what == "group_message" else m.body,
        )
        payload = m.payload or {}
        if what == "group":
            owner = payload.get("owner_user_id")
            item.members = [names.get(u, u) for u in [owner, *(payload.get("user_ids") or [])] if u]
        elif what == "conference":
            item.anchor = f"sandbox-conference-{m.delivery_id}"
        if m.recipient == "the group":
            item.recipient = _("the group")
        elif m.recipient == "the checked-in members":
            item.recipient = _("the checked-in members")
        items.append(item)

    card = None
    card_message = notification_selectors.latest_card(fault)
    if card_message is not None:
        member_ids = group_member_ids(fault)
        people = {p.pk: p.name for p in Person.objects.filter(pk__in=member_ids)}
        mine = me is not None and me.pk in member_ids and bool(me.dingtalk_user_id)
        card = SandboxCard(
            delivery=card_message.delivery,
            message=card_message,
            params=(card_message.payload or {}).get("params") or {},
            members=[
                {"name": people[pk], "checked_in": has_checked_in(fault.pk, pk)}
                for pk in sorted(people, key=people.get)
            ],
            can_check_in=mine and i_must_check_in and fault.status != Fault.Status.CLOSED,
        )
    return {"sandbox": items, "sandbox_card": card}


def _as_shown(markdown: str) -> str:
    """A group message roughly as DingTalk shows its markdown: no heading marks, links as text."""
    text = re.sub(r"^#+\s*", "", markdown, flags=re.MULTILINE)
    return re.sub(r"\[([^\]]+)\]\(([^)\s]+)\)", r"\1 (\2)", text)

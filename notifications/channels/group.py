"""The fault's collaboration group: creating it (once, by its uuid) and adding members."""

from ..models import Delivery
from ..transports import dingtalk, sandbox
from ..transports.base import Sent, TransportError


def send_create(d: Delivery) -> Sent:
    group = d.group
    reachable = [m for m in group.members if m.get("user_id")]
    if group.owner is None or not group.owner.dingtalk_user_id or not reachable:
        raise TransportError("nobody to be in the group has a DingTalk userId", permanent=True)
    owner = group.owner.dingtalk_user_id
    others = [m["user_id"] for m in reachable if m["user_id"] != owner]
    if d.transport == "sandbox":
        d.payload = {**(d.payload or {}), "uuid": group.uuid, "owner_user_id": owner, "user_ids": others}
        sandbox.send(d, address=group.uuid)
        return Sent(
            provider_id=f"sandbox-{group.uuid}",
            delivered=True,
            data={"open_conversation_id": f"sandbox-{group.uuid}", "chat_id": ""},
        )
    data = dingtalk.scene_group_create(title=group.title, owner_user_id=owner, user_ids=others, uuid=group.uuid)
    if not data.get("open_conversation_id"):
        raise TransportError("DingTalk created no group (no open_conversation_id in the answer)")
    return Sent(provider_id=data["open_conversation_id"], delivered=True, data=data)


def send_member_add(d: Delivery) -> Sent:
    user_id = d.person.dingtalk_user_id
    if not user_id:
        raise TransportError(f"{d.person.name} has no DingTalk userId", permanent=True)
    if d.transport == "sandbox":
        return sandbox.send(d, address=user_id)
    dingtalk.scene_group_add_members(open_conversation_id=d.target, user_ids=[user_id])
    return Sent(provider_id=user_id, delivered=True)

"""The one-click video conference: hosted by whoever asked (or the commander), with every
member who has checked in and has a DingTalk unionId."""

from incidents import selectors as incident_selectors
from incidents.models import RoleAssignment
from roster.models import Person

from ..models import Delivery
from ..texts import headline, war_room_url
from ..transports import dingtalk, sandbox
from ..transports.base import Sent, TransportError


def _people(d: Delivery) -> tuple[Person | None, list[Person]]:
    """The host and the invitees: everyone with a checked-in role who has a unionId."""
    checked_in = []
    for a in RoleAssignment.objects.filter(
        fault_id=d.fault_id, ended_at__isnull=True, checked_in_at__isnull=False
    ).select_related("person"):
        if a.person.dingtalk_union_id and a.person not in checked_in:
            checked_in.append(a.person)
    requested_by = ((d.payload or {}).get("requested_by") or {}).get("id")
    host = next((p for p in checked_in if p.pk == requested_by), None)
    if host is None:
        commander = incident_selectors.role_holder(d.fault_id, RoleAssignment.Role.COMMANDER)
        host = commander if commander in checked_in else (checked_in[0] if checked_in else None)
    return host, [p for p in checked_in if p != host]


def send(d: Delivery) -> Sent:
    host, invitees = _people(d)
    if host is None:
        raise TransportError("nobody who has checked in has a DingTalk unionId", permanent=True)
    names = [host.name, *(p.name for p in invitees)]
    if d.transport == "sandbox":
        d.payload = {**(d.payload or {}), "host": host.dingtalk_union_id, "invite": [p.dingtalk_union_id for p in invitees]}
        message = sandbox.send(d, address=host.dingtalk_union_id)
        return Sent(
            provider_id=message.provider_id,
            delivered=True,
            data={"externalLinkUrl": f"{war_room_url(d.fault)}#sandbox-conference-{d.pk}", "members": names},
        )
    data = dingtalk.video_conference_create(
        host_union_id=host.dingtalk_union_id,
        title=d.subject or headline(d.fault)[:30],
        invite_union_ids=[p.dingtalk_union_id for p in invitees],
    )
    return Sent(provider_id=str(data.get("conferenceId", "")), delivered=True, data={**data, "members": names})

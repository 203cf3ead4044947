"""The fault's collaboration group and its conference call, as the page's header shows them."""

from dataclasses import dataclass, field
from urllib.parse import urlsplit

from incidents.event_types import EventKind
from incidents.models import Fault
from notifications import selectors as notification_selectors
from notifications.models import Channel, CollaborationGroup, Delivery


@dataclass
class GroupState:
    title: str
    state: str  # "creating" | "ready" | "failed"
    sandbox: bool
    members: list[str]


@dataclass
class ConferenceState:
    state: str  # "starting" | "started" | "failed"
    url: str = ""
    members: list[str] = field(default_factory=list)
    sandbox: bool = False
    error: str = ""


def group_state(fault: Fault) -> GroupState | None:
    """The group, from its row and the deliveries that create it and add its members."""
    group = CollaborationGroup.objects.filter(fault=fault).first()
    if group is None:
        return None
    deliveries = notification_selectors.group_calls(fault)
    create = next((d for d in deliveries if d.channel == Channel.DINGTALK_GROUP_CREATE), None)
    if group.is_ready:
        state = "ready"
    elif create is not None and create.status == Delivery.Status.FAILED:
        state = "failed"
    else:
        state = "creating"
    joined = [d.person.name for d in deliveries if d.channel == Channel.DINGTALK_GROUP_MEMBER_ADD and d.person_id
              and d.status == Delivery.Status.DELIVERED]
    return GroupState(
        title=group.title,
        state=state,
        sandbox=create is not None and create.transport == "sandbox",
        members=[m["name"] for m in group.members if m.get("user_id")] + joined,
    )


def group_member_ids(fault: Fault) -> set[int]:
    """People in the fault's group: asked for at creation, or added later."""
    group = CollaborationGroup.objects.filter(fault=fault).first()
    if group is None or not group.is_ready:
        return set()
    ids = {m["id"] for m in group.members if m.get("user_id")}
    ids |= set(
        Delivery.objects.filter(
            fault=fault, channel=Channel.DINGTALK_GROUP_MEMBER_ADD, status=Delivery.Status.DELIVERED
        ).values_list("person_id", flat=True)
    )
    return ids


def conference_state(fault: Fault) -> ConferenceState | None:
    """The newest conference: asked for and not up yet, up (with its link), or failed."""
    newest = {}
    rows = fault.timeline.filter(
        kind__in=(EventKind.CONFERENCE_REQUESTED, EventKind.CONFERENCE_STARTED)
    ).order_by("seq")
    for e in rows:
        newest[e.kind] = e
    failed = (
        fault.timeline.filter(
            kind=EventKind.DELIVERY_OUTCOME,
            data__channel=Channel.DINGTALK_CONFERENCE,
            data__status=Delivery.Status.FAILED,
        )
        .order_by("-seq")
        .first()
    )
    requested, started = newest.get(EventKind.CONFERENCE_REQUESTED), newest.get(EventKind.CONFERENCE_STARTED)
    view = None
    if started is not None:
        sandbox = started.data.get("transport") == "sandbox"
        view = ConferenceState(
            state="started",
            url=_link(started.data.get("url") or "", sandbox),
            members=list(started.data.get("members") or []),
            sandbox=sandbox,
        )
    if requested is not None and (started is None or requested.seq > started.seq):
        if failed is not None and failed.seq > requested.seq:
            state, error = "failed", failed.data.get("error") or ""
        else:
            state, error = "starting", ""
        view = ConferenceState(
            state=state, error=error, url=view.url if view else "", members=view.members if view else [],
            sandbox=view.sandbox if view else False,
        )
    return view


def _link(url: str, sandbox: bool) -> str:
    # The sandbox's "conference" is a place on this page; keep the reader on his own host.
    if sandbox and "#" in url:
        return "#" + urlsplit(url).fragment
    return url

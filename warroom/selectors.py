"""Reads for the war-room pages: the fault list, one fault's snapshot, and timeline sentences.

The page renders a snapshot from here; the socket then sends timeline events, each with
a sentence from `event_text()` in the reader's language, so that the page and the live
updates say the same thing in the same words.
"""

import re
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlsplit

from django.db.models import Case, IntegerField, Value, When
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from incidents import permissions
from incidents import selectors as incident_selectors
from incidents.metrics import format_duration
from incidents.models import (
    Fault,
    Level,
    MitigationPlan,
    RecoverySummary,
    RoleAssignment,
    SLAPolicy,
    StatusUpdate,
    Task,
    TimelineEvent,
)
from notifications import selectors as notification_selectors
from notifications.models import Channel, CollaborationGroup, Delivery, Engagement, SandboxMessage
from roster.models import Person
from django.utils import timezone

# The page shows this many of the newest timeline events; the API has the rest.
TIMELINE_ON_PAGE = 200
DELIVERIES_ON_PAGE = 200
SANDBOX_ON_PAGE = 100

# Pages that ring a phone: a person paged by one of these was dialled.
CALL_CHANNELS = {Channel.DINGTALK_DING_PHONE, Channel.ALIYUN_VOICE}


# --- the list -----------------------------------------------------------------------------


@dataclass
class FaultRow:
    fault: Fault
    my_roles: list[str]


def fault_list(user) -> list[FaultRow]:
    """Open faults first (most severe, then newest), then the rest, newest first."""
    faults = list(
        incident_selectors.visible_faults(user, Fault.objects.select_related("affected_business"))
        .annotate(
            closed_rank=Case(
                When(status__in=Fault.OPEN_STATUSES, then=Value(0)), default=Value(1), output_field=IntegerField()
            )
        )
        .order_by("closed_rank", Case(When(closed_rank=0, then="level"), default=Value(0)), "-declared_at")[:300]
    )
    person = permissions.person_of(user)
    mine: dict[int, list[str]] = {}
    if person is not None:
        for fault_id, role in RoleAssignment.objects.filter(
            fault__in=faults, person=person, ended_at__isnull=True
        ).values_list("fault_id", "role"):
            mine.setdefault(fault_id, []).append(RoleAssignment.Role(role).label)
    return [FaultRow(fault=f, my_roles=mine.get(f.pk, [])) for f in faults]


# --- one fault ----------------------------------------------------------------------------


@dataclass
class RoleRow:
    assignment: RoleAssignment
    check_in_due: datetime | None
    state: str  # "checked_in" | "waiting" | "late"
    # The newest page to this person (voice call, SMS, DING ...), None if nobody paged him yet.
    last_page: Delivery | None = None
    pages_sent: int = 0
    # Being pulled in: paged, paged again, escalated, until he checks in (None: never paged).
    engagement: Engagement | None = None
    dialled: bool = False  # at least one page rang his phone
    pages_pending: int = 0
    pages_cancelled: int = 0

    @property
    def dialling_stopped(self) -> bool:
        e = self.engagement
        return e is not None and e.paged_at is not None and e.checked_in_at is not None


@dataclass
class PlanRow:
    plan: MitigationPlan
    more_severe_than_fault: bool


@dataclass
class GroupState:
    """The fault's collaboration group as the header shows it."""

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


@dataclass
class SummaryView:
    """The recovery metrics summary, ready to show (durations formatted, verdicts named)."""

    summary: RecoverySummary
    stages: list[tuple[str, str]]
    roles: list[dict]
    tasks: list[dict]
    notify: dict | None
    progress: dict | None


@dataclass
class SandboxItem:
    message: SandboxMessage
    what: str  # "group" | "member" | "card" | "call" | "text" | "group_message" | "conference" | "other"
    label: str  # the channel, in the reader's language
    recipient: str
    members: list[str] = field(default_factory=list)
    anchor: str = ""
    text: str = ""


def _as_shown(markdown: str) -> str:
    """A group message roughly as DingTalk shows its markdown: no heading marks, links as text."""
    text = re.sub(r"^#+\s*", "", markdown, flags=re.MULTILINE)
    return re.sub(r"\[([^\]]+)\]\(([^)\s]+)\)", r"\1 (\2)", text)


@dataclass
class SandboxCard:
    """The check-in card as it would look in the DingTalk group."""

    delivery: Delivery
    message: SandboxMessage
    params: dict
    members: list[dict]  # {"name", "checked_in"}
    can_check_in: bool


@dataclass
class WarRoom:
    fault: Fault
    sla: SLAPolicy | None
    roles: list[RoleRow]
    tasks: list[Task]
    plans: list[PlanRow]
    updates: list[StatusUpdate]
    timeline: list[dict]
    timeline_truncated: bool
    next_progress_due: datetime | None
    can_manage: bool
    is_participant: bool
    me: Person | None
    my_roles: list[str]
    my_tasks: set[int] = field(default_factory=set)
    deliveries: list[Delivery] = field(default_factory=list)
    group: GroupState | None = None
    conference: ConferenceState | None = None
    summary: SummaryView | None = None
    sandbox: list[SandboxItem] = field(default_factory=list)
    sandbox_card: SandboxCard | None = None

    @property
    def i_must_check_in(self) -> bool:
        return any(r.assignment.person_id == getattr(self.me, "pk", None) and r.state != "checked_in" for r in self.roles)


def war_room(fault: Fault, user) -> WarRoom:
    fault = Fault.objects.select_related("affected_business").prefetch_related("suspected_cause_businesses").get(
        pk=fault.pk
    )
    now = timezone.now()
    sla = SLAPolicy.objects.filter(level=fault.level).first()
    me = permissions.person_of(user)

    roles = []
    for a in fault.roles.filter(ended_at__isnull=True).select_related("person").order_by("role", "assigned_at"):
        due = a.assigned_at + sla.check_in_within if sla else None
        if a.checked_in_at:
            state = "checked_in"
        elif due is not None and due < now:
            state = "late"
        else:
            state = "waiting"
        roles.append(RoleRow(assignment=a, check_in_due=due, state=state))
    deliveries = notification_selectors.deliveries_for_fault(fault)
    pages_by_person: dict[int, list[Delivery]] = {}
    for d in deliveries:
        if d.purpose == Delivery.Purpose.PAGE and d.person_id is not None:
            pages_by_person.setdefault(d.person_id, []).append(d)
    engagements = {e.person_id: e for e in Engagement.objects.filter(fault=fault)}
    for row in roles:
        pages = pages_by_person.get(row.assignment.person_id, [])
        sent = [d for d in pages if d.status != Delivery.Status.CANCELLED]
        row.last_page = sent[-1] if sent else None
        row.pages_sent = len(sent)
        row.engagement = engagements.get(row.assignment.person_id)
        row.dialled = any(d.channel in CALL_CHANNELS for d in sent)
        row.pages_pending = sum(d.status in (Delivery.Status.PENDING, Delivery.Status.SENDING) for d in pages)
        row.pages_cancelled = sum(d.status == Delivery.Status.CANCELLED for d in pages)
    role_order = {r: i for i, r in enumerate(RoleAssignment.Role.values)}
    roles.sort(key=lambda r: (role_order[r.assignment.role], r.assignment.assigned_at))

    tasks = list(fault.tasks.select_related("assignee"))
    plans = [
        PlanRow(plan=p, more_severe_than_fault=p.expected_impact < fault.level)
        for p in fault.plans.select_related("proposed_by", "decided_by")
    ]
    updates = list(fault.updates.select_related("author__person").order_by("-posted_at", "-pk"))

    events = list(fault.timeline.order_by("-seq")[: TIMELINE_ON_PAGE + 1])
    truncated = len(events) > TIMELINE_ON_PAGE
    timeline = [{**with_text(e.as_message()), "created_at": e.created_at} for e in events[:TIMELINE_ON_PAGE]]

    next_progress_due = None
    if fault.is_open and sla is not None:
        last = (
            fault.updates.filter(kind=StatusUpdate.Kind.PROGRESS).order_by("-posted_at").values_list("posted_at", flat=True).first()
        )
        next_progress_due = (last or fault.declared_at) + sla.progress_update_every

    return WarRoom(
        fault=fault,
        sla=sla,
        roles=roles,
        tasks=tasks,
        plans=plans,
        updates=updates,
        timeline=timeline,
        timeline_truncated=truncated,
        next_progress_due=next_progress_due,
        can_manage=permissions.can_manage(user, fault),
        is_participant=permissions.is_participant(user, fault),
        me=me,
        my_roles=[r.assignment.get_role_display() for r in roles if me and r.assignment.person_id == me.pk],
        my_tasks={t.pk for t in tasks if me and t.assignee_id == me.pk},
        deliveries=deliveries[::-1][:DELIVERIES_ON_PAGE],
        group=group_state(fault, deliveries),
        conference=conference_state(fault),
        summary=summary_view(fault),
        **sandbox_view(fault, me, roles),
    )


def group_state(fault: Fault, deliveries: list[Delivery]) -> GroupState | None:
    group = CollaborationGroup.objects.filter(fault=fault).first()
    if group is None:
        return None
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


def _link(url: str, sandbox: bool) -> str:
    # The sandbox's "conference" is a place on this page; keep the reader on his own host.
    if sandbox and "#" in url:
        return "#" + urlsplit(url).fragment
    return url


def conference_state(fault: Fault) -> ConferenceState | None:
    """The newest conference: asked for and not up yet, up (with its link), or failed."""
    newest = {}
    rows = fault.timeline.filter(kind__in=("conference.requested", "conference.started")).order_by("seq")
    for e in rows:
        newest[e.kind] = e
    failed = (
        fault.timeline.filter(
            kind="delivery.outcome", data__channel=Channel.DINGTALK_CONFERENCE, data__status=Delivery.Status.FAILED
        )
        .order_by("-seq")
        .first()
    )
    requested, started = newest.get("conference.requested"), newest.get("conference.started")
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


VERDICTS = {"met", "late", "missed", "pending"}


def _verdict_label(verdict: str) -> str:
    return {"met": _("met"), "late": _("late"), "missed": _("missed"), "pending": _("pending")}.get(verdict, verdict)


def summary_view(fault: Fault) -> SummaryView | None:
    """The metrics summary, once the fault has recovered (kept as computed at recovery)."""
    if fault.status not in (Fault.Status.RECOVERED, Fault.Status.CLOSED):
        return None
    summary = RecoverySummary.objects.filter(fault=fault).first()
    if summary is None:
        return None
    data = summary.data or {}
    times = data.get("times") or {}
    stage_names = [
        ("declare", _("Declare")),
        ("notify", _("Notify")),
        ("check_in", _("Check in")),
        ("engage", _("Engage")),
        ("mitigate", _("Mitigate")),
        ("recover", _("Recover")),
    ]
    sla = data.get("sla") or {}

    def verdict(row: dict) -> dict:
        v = row.get("verdict", "")
        return {"verdict": v if v in VERDICTS else "pending", "verdict_label": _verdict_label(v)}

    roles = [
        {
            "person": r.get("person", ""),
            "role": _role(r.get("role")).lower(),
            "after": format_duration(r.get("check_in_after")),
            "within": format_duration(r.get("within")),
            **verdict(r),
        }
        for r in sla.get("roles") or []
    ]
    tasks = [
        {
            "task": t.get("task", ""),
            "assignee": t.get("assignee", ""),
            "after": format_duration(t.get("response_after")),
            "within": format_duration(t.get("within")),
            **verdict(t),
        }
        for t in sla.get("tasks") or []
    ]
    notify = sla.get("notify") or None
    if notify:
        notify = {
            "after": format_duration(notify.get("first_reached_after")),
            "within": format_duration(notify.get("within")),
            **verdict(notify),
        }
    progress = sla.get("progress") or None
    if progress:
        progress = {
            "updates": progress.get("updates", 0),
            "longest_gap": format_duration(progress.get("longest_gap")),
            "every": format_duration(progress.get("every")),
            **verdict(progress),
        }
    return SummaryView(
        summary=summary,
        stages=[(label, format_duration(times.get(key))) for key, label in stage_names],
        roles=roles,
        tasks=tasks,
        notify=notify,
        progress=progress,
    )


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


def sandbox_view(fault: Fault, me: Person | None, roles: list[RoleRow]) -> dict:
    """What went through the sandbox transport instead of a provider: the group, the card, the calls."""
    messages = notification_selectors.sandbox_messages_for_fault(fault)
    if not messages:
        return {"sandbox": [], "sandbox_card": None}
    group = CollaborationGroup.objects.filter(fault=fault).first()
    names = {m["user_id"]: m["name"] for m in (group.members if group else []) if m.get("user_id")}
    items = []
    for m in messages[::-1][:SANDBOX_ON_PAGE]:
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
    card_message = next((m for m in reversed(messages) if m.channel == Channel.DINGTALK_CARD), None)
    if card_message is not None:
        checked_in = {r.assignment.person_id for r in roles if r.state == "checked_in"}
        member_ids = group_member_ids(fault)
        people = {p.pk: p.name for p in Person.objects.filter(pk__in=member_ids)}
        mine = me is not None and me.pk in member_ids and bool(me.dingtalk_user_id)
        waiting = any(r.assignment.person_id == getattr(me, "pk", None) and r.state != "checked_in" for r in roles)
        card = SandboxCard(
            delivery=card_message.delivery,
            message=card_message,
            params=(card_message.payload or {}).get("params") or {},
            members=[{"name": people[pk], "checked_in": pk in checked_in} for pk in sorted(people, key=people.get)],
            can_check_in=mine and waiting and fault.status != Fault.Status.CLOSED,
        )
    return {"sandbox": items, "sandbox_card": card}


def events_after(fault_id: int, after: int, limit: int) -> list[dict]:
    """Up to `limit` events with a seq above `after`, oldest first, as the socket sends them."""
    return [e.as_message() for e in TimelineEvent.objects.filter(fault_id=fault_id, seq__gt=after).order_by("seq")[:limit]]


def people_for_assignment():
    return Person.objects.order_by("name")


# --- timeline sentences -------------------------------------------------------------------

# The label services give the product itself when it acts (a task, an alert); shown translated.
SYSTEM_ACTOR = "War Room"


def _level(value) -> str:
    try:
        return Level(int(value)).label
    except (TypeError, ValueError):
        return str(value)


def _role(value) -> str:
    try:
        return str(RoleAssignment.Role(value).label)
    except ValueError:
        return str(value)


def _status(value) -> str:
    try:
        return str(Fault.Status(value).label)
    except ValueError:
        return str(value)


def _task_status(value) -> str:
    try:
        return str(Task.Status(value).label)
    except ValueError:
        return str(value)


def _name(ref) -> str:
    return ref.get("name", "?") if isinstance(ref, dict) else "?"


def event_text(message: dict) -> str:
    """One sentence for a timeline event, in the active language."""
    kind, d, actor = message["kind"], message.get("data") or {}, message.get("actor") or ""
    if actor == SYSTEM_ACTOR:
        actor = _("War Room")
    if kind == "fault.declared":
        return _("%(actor)s declared the fault at %(level)s: %(title)s") % {
            "actor": actor,
            "level": _level(d.get("level")),
            "title": d.get("title", ""),
        }
    if kind == "fault.level_changed":
        text = (
            _("%(actor)s raised the level from %(from)s to %(to)s")
            if d.get("raised")
            else _("%(actor)s lowered the level from %(from)s to %(to)s")
        ) % {"actor": actor, "from": _level(d.get("from")), "to": _level(d.get("to"))}
        return text + (_(" (reason: %(reason)s)") % {"reason": d["reason"]} if d.get("reason") else "")
    if kind in ("fault.mitigated", "fault.recovered", "fault.closed"):
        return _("%(actor)s marked the fault %(status)s") % {"actor": actor, "status": _status(d.get("to")).lower()}
    if kind == "fault.reopened":
        text = _("%(actor)s reopened the fault") % {"actor": actor}
        return text + (_(" (reason: %(reason)s)") % {"reason": d["reason"]} if d.get("reason") else "")
    if kind == "role.assigned":
        text = _("%(actor)s assigned %(person)s as %(role)s") % {
            "actor": actor,
            "person": _name(d.get("person")),
            "role": _role(d.get("role")).lower(),
        }
        if d.get("replaced"):
            text += _(", replacing %(person)s") % {"person": _name(d["replaced"])}
        return text
    if kind == "role.checked_in":
        return _("%(person)s checked in") % {"person": _name(d.get("person"))}
    if kind == "task.created":
        return _("%(actor)s gave %(person)s a task: %(title)s") % {
            "actor": actor,
            "person": _name(d.get("assignee")),
            "title": d.get("title", ""),
        }
    if kind == "task.updated":
        parts = []
        if "status" in d:
            parts.append(_("now %(status)s") % {"status": _task_status(d["status"].get("to")).lower()})
        if d.get("progress"):
            parts.append(_("progress: %(progress)s") % {"progress": d["progress"]})
        if "due_at" in d:
            parts.append(_("due time moved"))
        return _("%(actor)s updated the task %(title)s: %(changes)s") % {
            "actor": actor,
            "title": d.get("title", ""),
            "changes": "; ".join(str(p) for p in parts),
        }
    if kind == "plan.proposed":
        return _("%(actor)s proposed a plan (expected impact %(impact)s): %(description)s") % {
            "actor": actor,
            "impact": _level(d.get("expected_impact")),
            "description": d.get("description", ""),
        }
    if kind == "plan.approved":
        return _("%(actor)s approved the plan: %(description)s") % {"actor": actor, "description": d.get("description", "")}
    if kind == "plan.rejected":
        text = _("%(actor)s rejected the plan: %(description)s") % {"actor": actor, "description": d.get("description", "")}
        return text + (_(" (reason: %(reason)s)") % {"reason": d["reason"]} if d.get("reason") else "")
    if kind == "plan.executed":
        return _("%(actor)s executed the plan: %(description)s") % {"actor": actor, "description": d.get("description", "")}
    if kind == "delivery.outcome":
        return delivery_outcome_text(d) or d.get("text") or kind
    if kind in ("sla.reminder", "sla.breached"):
        return sla_text(kind, d, message.get("at")) or d.get("text") or kind
    if kind == "conference.requested":
        return _("%(actor)s asked for a video conference with everyone who has checked in") % {"actor": actor}
    if kind == "conference.started":
        members = d.get("members") or []
        text = (
            _("The video conference has started with %(people)s") % {"people": _join(members)}
            if members
            else _("The video conference has started")
        )
        if d.get("url"):
            text += _(": %(url)s") % {"url": d["url"]}
        return text + _sandbox(d)
    if kind == "update.posted":
        if d.get("kind") == StatusUpdate.Kind.NOTE:
            return _("%(actor)s added a troubleshooting note: %(body)s") % {"actor": actor, "body": d.get("body", "")}
        return _("%(actor)s posted a progress update: %(body)s") % {"actor": actor, "body": d.get("body", "")}
    # Events other apps add (notifications, conference) before this page learns their words.
    return _("%(actor)s: %(kind)s") % {"actor": actor, "kind": kind}


def _join(names) -> str:
    return _(", ").join(str(n) for n in names)


def _sandbox(d: dict) -> str:
    return _(" (sandbox)") if d.get("transport") == "sandbox" else ""


def _channel(value) -> str:
    try:
        return str(Channel(value).label)
    except ValueError:
        return str(value or "")


def _recipient(d: dict) -> str:
    if isinstance(d.get("person"), dict):
        return _name(d["person"])
    channel = d.get("channel")
    if channel in (Channel.DINGTALK_GROUP_MESSAGE, Channel.DINGTALK_CARD, Channel.DINGTALK_GROUP_CREATE):
        return _("the group")
    if channel == Channel.DINGTALK_ROBOT:
        return _("a notification group")
    if channel == Channel.DINGTALK_CONFERENCE:
        return _("the checked-in members")
    if channel == Channel.WEBHOOK:
        return _("the webhook")
    return ""


def _capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]


def delivery_outcome_text(d: dict) -> str | None:
    """The sentence for one delivery outcome, from its data; None when the data says too little."""
    status, channel = d.get("status"), d.get("channel")
    error = d.get("error") or ""
    if status == "cancelled" and "count" in d:
        count = int(d.get("count") or 0)
        if isinstance(d.get("person"), dict):
            return ngettext(
                "%(count)d pending page to %(person)s cancelled",
                "%(count)d pending pages to %(person)s cancelled",
                count,
            ) % {"count": count, "person": _name(d["person"])}
        return ngettext(
            "%(count)d pending message cancelled", "%(count)d pending messages cancelled", count
        ) % {"count": count}
    if status == "exhausted":
        return _("Could not page %(person)s: no paging method left") % {"person": _name(d.get("person"))}
    if status == "created":
        text = _("Collaboration group created with %(people)s") % {"people": _join(d.get("members") or [])}
        if d.get("not_added"):
            text += _("; could not add %(people)s (no DingTalk userId)") % {"people": _join(d["not_added"])}
        return text + _sandbox(d)
    if status == "added":
        return _("%(person)s joined the group") % {"person": _name(d.get("person"))} + _sandbox(d)
    if not channel:
        return None
    if status == Delivery.Status.FAILED and channel == Channel.DINGTALK_GROUP_CREATE:
        return _("Could not create the collaboration group: %(error)s") % {"error": error} + _sandbox(d)
    if status == Delivery.Status.FAILED and channel == Channel.DINGTALK_GROUP_MEMBER_ADD:
        return _("Could not add %(person)s to the group: %(error)s") % {
            "person": _name(d.get("person")), "error": error} + _sandbox(d)
    if status == Delivery.Status.FAILED and channel == Channel.DINGTALK_CONFERENCE:
        return _("Could not start the video conference: %(error)s") % {"error": error} + _sandbox(d)
    what = {"channel": _channel(channel), "person": _recipient(d), "error": error}
    receipt = "receipt" in d
    if status == Delivery.Status.SENT:
        text = _("%(channel)s to %(person)s sent") % what
    elif status == Delivery.Status.DELIVERED:
        text = (
            _("%(channel)s to %(person)s answered") if receipt and channel == Channel.ALIYUN_VOICE
            else _("%(channel)s to %(person)s delivered")
        ) % what
    elif status == Delivery.Status.FAILED:
        if receipt and channel == Channel.ALIYUN_VOICE:
            text = _("%(channel)s to %(person)s not answered") % what
        elif receipt:
            text = _("%(channel)s to %(person)s not delivered") % what
        elif error:
            text = _("%(channel)s to %(person)s failed: %(error)s") % what
        else:
            text = _("%(channel)s to %(person)s failed: no receipt came") % what
    elif status == "retrying":
        text = _("%(channel)s to %(person)s failed (%(error)s); retrying") % what
    elif status == "unconfirmed":
        text = _("%(channel)s to %(person)s unconfirmed (%(error)s); not sent again") % what
    else:
        return None
    return _capitalised(text) + _sandbox(d)


def _names(refs) -> str:
    return _join(_name(r) for r in refs or [])


def _minutes(seconds) -> int:
    try:
        return int(seconds) // 60
    except (TypeError, ValueError):
        return 0


def sla_text(kind: str, d: dict, at: str | None) -> str | None:
    """Reminders and breaches of the response's deadlines, from their data."""
    what = d.get("what")
    if what == "check_in" and isinstance(d.get("person"), dict):
        person, minutes = _name(d["person"]), _minutes(d.get("waited_seconds"))
        escalated = [p for step in d.get("escalation") or [] for p in step.get("people") or []]
        if "repaged" not in d:
            return _("%(person)s has still not checked in after %(minutes)s min: escalated to %(people)s") % {
                "person": person, "minutes": minutes, "people": _names(escalated) or _("nobody")}
        text = _("%(person)s has not checked in within %(minutes)s min") % {"person": person, "minutes": minutes}
        if d.get("repaged"):
            text += _(": paged again")
        if escalated:
            text += _("; escalated to %(people)s") % {"people": _names(escalated)}
        if isinstance(d.get("successor"), dict):
            text += _("; %(person)s takes over as commander") % {"person": _name(d["successor"])}
        return text
    if what == "progress_update":
        since, now = parse_datetime(d.get("since") or ""), parse_datetime(at or "")
        minutes = _minutes((now - since).total_seconds()) if since and now else 0
        if d.get("reminded"):
            return _("No progress update for %(minutes)s min: %(people)s reminded") % {
                "minutes": minutes, "people": _names(d["reminded"])}
        return _("No progress update for %(minutes)s min: nobody to remind") % {"minutes": minutes}
    if what == "task_response" and isinstance(d.get("assignee"), dict):
        task = {"title": d.get("title", ""), "person": _name(d["assignee"])}
        if kind == "sla.reminder":
            return _("Task “%(title)s” not acknowledged in time: %(person)s reminded") % task
        if isinstance(d.get("flagged_to"), dict):
            return _("Task “%(title)s” still not acknowledged by %(person)s: flagged to %(commander)s") % {
                **task, "commander": _name(d["flagged_to"])}
        return _("Task “%(title)s” still not acknowledged by %(person)s: no commander to tell") % task
    return None


def with_text(message: dict) -> dict:
    return {**message, "text": event_text(message)}

"""One fault's war-room page as a snapshot, and the events a socket sends after it.

The page renders this snapshot; the socket then sends each timeline event with its seq,
and a page that reconnects catches up with `events_after`.
"""

from dataclasses import dataclass, field
from datetime import datetime

from django.utils import timezone

from incidents import permissions
from incidents.models import Fault, MitigationPlan, RoleAssignment, StatusUpdate, Task, TimelineEvent
from incidents.selectors import Sla, has_checked_in, sla_for
from notifications import selectors as notification_selectors
from notifications.models import Channel, Delivery, Engagement
from notifications.outbox import outages
from roster.models import Person

from ..event_text import with_text
from .collaboration import ConferenceState, GroupState, conference_state, group_state
from .recovery_summary import SummaryView, summary_view
from .sandbox import SandboxCard, SandboxItem, sandbox_view

# The page shows this many of the newest timeline events and deliveries; the API has the rest.
# What one page shows of each list, whatever the fault's length (older items are in the API).
TIMELINE_ON_PAGE = 100
DELIVERIES_ON_PAGE = 50
UPDATES_ON_PAGE = 30

# Pages that ring a phone: a person paged by one of these was dialled.
CALL_CHANNELS = {Channel.DINGTALK_DING_PHONE, Channel.ALIYUN_VOICE}


@dataclass
class RoleRow:
    assignment: RoleAssignment
    check_in_due: datetime
    state: str  # "checked_in" | "waiting" | "late", for this role
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
class WarRoom:
    fault: Fault
    sla: Sla
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
    i_must_check_in: bool = False
    my_tasks: set[int] = field(default_factory=set)
    deliveries: list[Delivery] = field(default_factory=list)
    group: GroupState | None = None
    conference: ConferenceState | None = None
    summary: SummaryView | None = None
    sandbox: list[SandboxItem] = field(default_factory=list)
    sandbox_card: SandboxCard | None = None
    updates_truncated: bool = False
    # Providers failing for everyone now: [{"name", "since"}], shown as a banner.
    outages: list[dict] = field(default_factory=list)


def war_room(fault: Fault, user) -> WarRoom:
    fault = Fault.objects.select_related("affected_business").prefetch_related("suspected_cause_businesses").get(
        pk=fault.pk
    )
    # The SLA the response is held to (the level's, or the defaults if its row was deleted),
    # so that the page counts down to the deadlines that paging and escalation act on.
    sla = sla_for(fault.level)
    me = permissions.person_of(user)

    roles = _role_rows(fault, sla)
    tasks = list(fault.tasks.select_related("assignee"))
    plans = [
        PlanRow(plan=p, more_severe_than_fault=p.expected_impact < fault.level)
        for p in fault.plans.select_related("proposed_by", "decided_by")
    ]
    updates = list(fault.updates.select_related("author__person").order_by("-posted_at", "-pk")[: UPDATES_ON_PAGE + 1])
    updates_truncated = len(updates) > UPDATES_ON_PAGE
    updates = updates[:UPDATES_ON_PAGE]

    events = list(fault.timeline.order_by("-seq")[: TIMELINE_ON_PAGE + 1])
    truncated = len(events) > TIMELINE_ON_PAGE
    timeline = [{**with_text(e.as_message()), "created_at": e.created_at} for e in events[:TIMELINE_ON_PAGE]]

    next_progress_due = None
    if fault.is_open:
        last = (
            fault.updates.filter(kind=StatusUpdate.Kind.PROGRESS).order_by("-posted_at").values_list("posted_at", flat=True).first()
        )
        next_progress_due = (last or fault.declared_at) + sla.progress_update_every

    my_roles = [r.assignment.get_role_display() for r in roles if me and r.assignment.person_id == me.pk]
    i_must_check_in = bool(my_roles) and not has_checked_in(fault.pk, me.pk)
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
        my_roles=my_roles,
        i_must_check_in=i_must_check_in,
        my_tasks={t.pk for t in tasks if me and t.assignee_id == me.pk},
        updates_truncated=updates_truncated,
        deliveries=notification_selectors.latest_deliveries(fault, DELIVERIES_ON_PAGE),
        group=group_state(fault),
        conference=conference_state(fault),
        summary=summary_view(fault),
        outages=[{"name": outages.name(o.transport), "since": o.outage_since} for o in outages.current()],
        **sandbox_view(fault, me, i_must_check_in),
    )


def _role_rows(fault: Fault, sla: Sla) -> list[RoleRow]:
    """The check-in board: each active role, its deadline, and how its holder is being paged."""
    now = timezone.now()
    roles = []
    for a in fault.roles.filter(ended_at__isnull=True).select_related("person").order_by("assigned_at", "pk"):
        due = a.assigned_at + sla.check_in_within
        if a.checked_in_at:
            state = "checked_in"
        elif due < now:
            state = "late"
        else:
            state = "waiting"
        roles.append(RoleRow(assignment=a, check_in_due=due, state=state))
    pages_by_person: dict[int, list[Delivery]] = {}
    for d in notification_selectors.pages_of(fault, {r.assignment.person_id for r in roles}):
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
    # The board lists roles in the order the product defines them (commander first), not alphabetically.
    role_order = {r: i for i, r in enumerate(RoleAssignment.Role.values)}
    roles.sort(key=lambda r: (role_order[r.assignment.role], r.assignment.assigned_at))
    return roles


def events_after(fault_id: int, after: int, limit: int) -> list[dict]:
    """Up to `limit` events with a seq above `after`, oldest first, as the socket sends them."""
    return [e.as_message() for e in TimelineEvent.objects.filter(fault_id=fault_id, seq__gt=after).order_by("seq")[:limit]]


def people_for_assignment():
    return Person.objects.order_by("name")

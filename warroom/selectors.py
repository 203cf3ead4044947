"""Reads for the war-room pages: the fault list, one fault's snapshot, and timeline sentences.

The page renders a snapshot from here; the socket then sends timeline events, each with
a sentence from `event_text()` in the reader's language, so that the page and the live
updates say the same thing in the same words.
"""

from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Case, IntegerField, Value, When
from django.utils.translation import gettext as _

from incidents import permissions
from notifications import selectors as notification_selectors
from notifications.models import Delivery
from incidents.models import Fault, Level, MitigationPlan, RoleAssignment, SLAPolicy, StatusUpdate, Task, TimelineEvent
from roster.models import Person
from warroom import clock

# The page shows this many of the newest timeline events; the API has the rest.
TIMELINE_ON_PAGE = 200
DELIVERIES_ON_PAGE = 200


# --- the list -----------------------------------------------------------------------------


def visible_faults(user):
    """Faults the user may see: everything with the view permission, else those he has a role in."""
    qs = Fault.objects.select_related("affected_business")
    if user.has_perm("incidents.view_fault"):
        return qs
    person = permissions.person_of(user)
    if person is None:
        return qs.none()
    return qs.filter(roles__person=person, roles__ended_at__isnull=True).distinct()


@dataclass
class FaultRow:
    fault: Fault
    my_roles: list[str]


def fault_list(user) -> list[FaultRow]:
    """Open faults first (most severe, then newest), then the rest, newest first."""
    faults = list(
        visible_faults(user)
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


@dataclass
class PlanRow:
    plan: MitigationPlan
    more_severe_than_fault: bool


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

    @property
    def i_must_check_in(self) -> bool:
        return any(r.assignment.person_id == getattr(self.me, "pk", None) and r.state != "checked_in" for r in self.roles)


def war_room(fault: Fault, user) -> WarRoom:
    fault = Fault.objects.select_related("affected_business").prefetch_related("suspected_cause_businesses").get(
        pk=fault.pk
    )
    now = clock.now()
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
    for row in roles:
        pages = pages_by_person.get(row.assignment.person_id, [])
        row.last_page = pages[-1] if pages else None
        row.pages_sent = len(pages)
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
    )


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
        # Written by notifications as a finished sentence ("SMS to Li Lei delivered").
        return d.get("text") or kind
    if kind == "update.posted":
        if d.get("kind") == StatusUpdate.Kind.NOTE:
            return _("%(actor)s added a troubleshooting note: %(body)s") % {"actor": actor, "body": d.get("body", "")}
        return _("%(actor)s posted a progress update: %(body)s") % {"actor": actor, "body": d.get("body", "")}
    # Events other apps add (notifications, conference) before this page learns their words.
    return _("%(actor)s: %(kind)s") % {"actor": actor, "kind": kind}


def with_text(message: dict) -> dict:
    return {**message, "text": event_text(message)}

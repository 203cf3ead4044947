"""Every change to a fault goes through here.

Each service runs in one transaction, locks the fault's row, writes its rows and exactly
one timeline event (with the next `seq` of that fault), and leaves everything that
reaches the outside world (the live page, notifications) to after-commit hooks.

`actor` is the user who asked, or None when the product itself acts (a Celery task, an
alert). Services check permissions themselves so that every entry point — API, page,
socket, admin, task — gets the same answer.
"""

from collections.abc import Iterable
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import F

from roster import selectors as roster_selectors
from roster.models import Business, Person
from django.utils import timezone

from . import events, metrics, permissions
from .errors import GuardrailViolation, InvalidInput, InvalidTransition, NotAllowed
from .models import Fault, Level, MitigationPlan, RoleAssignment, SLAPolicy, StatusUpdate, Task, TimelineEvent

# Used only when an SLA row for the level has been deleted by an admin.
FALLBACK_TASK_RESPONSE = timedelta(minutes=15)

Role = RoleAssignment.Role


# --- helpers ------------------------------------------------------------------------------


def _actor_label(actor, source: str | None = None) -> str:
    if source:
        return source
    if actor is None:
        return "War Room"
    person = permissions.person_of(actor)
    if person is not None:
        return person.name
    return actor.get_full_name() or actor.get_username()


def _user(actor):
    """The actor as a user to store on a row: None for the product itself (or an anonymous actor)."""
    return actor if actor is not None and actor.is_authenticated else None


def _lock(fault: Fault) -> Fault:
    """Lock the fault's row for the rest of the transaction; all writers queue here."""
    return Fault.objects.select_for_update().get(pk=fault.pk)


def _record(fault: Fault, kind: str, *, actor, data: dict, source: str | None = None) -> TimelineEvent:
    Fault.objects.filter(pk=fault.pk).update(last_seq=F("last_seq") + 1)
    fault.last_seq = Fault.objects.values_list("last_seq", flat=True).get(pk=fault.pk)
    event = TimelineEvent.objects.create(
        fault=fault,
        seq=fault.last_seq,
        kind=kind,
        actor=_user(actor),
        actor_label=_actor_label(actor, source),
        data=data,
        created_at=timezone.now(),
    )
    events.publish(event)
    return event


def _require(allowed: bool, message: str) -> None:
    if not allowed:
        raise NotAllowed(message)


def _require_manager(actor, fault: Fault) -> None:
    if actor is not None:
        _require(
            permissions.can_manage(actor, fault),
            "Only this fault's commander or a user with the manage permission may do this.",
        )


def _require_not_closed(fault: Fault) -> None:
    if fault.status == Fault.Status.CLOSED:
        raise InvalidTransition(f"Fault #{fault.pk} is closed; reopen it first.")


def _require_open(fault: Fault, doing: str) -> None:
    if not fault.is_open:
        raise InvalidTransition(f"Fault #{fault.pk} is {fault.get_status_display().lower()}; cannot {doing}.")


def _level(value) -> int:
    if value not in Level.values:
        raise InvalidInput(f"Level must be one of {', '.join(Level.labels)}.")
    return int(value)


def _person_ref(person: Person) -> dict:
    return {"id": person.pk, "name": person.name}


def _sla(level: int) -> SLAPolicy | None:
    return SLAPolicy.objects.filter(level=level).first()


def _assign(fault: Fault, person: Person, role: str, actor) -> RoleAssignment:
    return RoleAssignment.objects.create(
        fault=fault,
        person=person,
        role=role,
        assigned_by=_user(actor),
        assigned_at=timezone.now(),
    )


# --- faults -------------------------------------------------------------------------------


@transaction.atomic
def fault_declare(
    *,
    title: str,
    level: int,
    affected_business: Business,
    impact: str = "",
    suspected_cause_businesses: Iterable[Business] = (),
    detected_at: datetime | None = None,
    commander: Person | None = None,
    fault_handler: Person | None = None,
    actor=None,
    source: str | None = None,
) -> Fault:
    if actor is not None:
        _require(permissions.can_declare(actor), "You may not declare faults.")
    title = (title or "").strip()
    if not title:
        raise InvalidInput("A fault needs a title.")
    level = _level(level)
    now = timezone.now()
    detected_at = detected_at or now
    if detected_at > now + timedelta(minutes=1):
        raise InvalidInput("The detection time is in the future.")
    suspects = list(dict.fromkeys(suspected_cause_businesses))

    fault = Fault.objects.create(
        title=title,
        level=level,
        impact=impact or "",
        affected_business=affected_business,
        declared_by=_user(actor),
        detected_at=detected_at,
        declared_at=now,
    )
    fault.suspected_cause_businesses.set(suspects)
    # Roles not given are chosen from the roster; the event says which rule or schedule
    # chose them and which candidates were skipped on the way.
    given = {"given": True}
    commander, commander_why = (
        (commander, given) if commander is not None
        else roster_selectors.choose_commander(level=level, business=affected_business, at=now)
    )
    fault_handler, handler_why = (
        (fault_handler, given) if fault_handler is not None else roster_selectors.fault_handler_on_duty(at=now)
    )
    roles, unfilled_roles = [], []
    for role, person, why in [(Role.COMMANDER, commander, commander_why), (Role.FAULT_HANDLER, fault_handler, handler_why)]:
        if person is None:
            unfilled_roles.append({"role": role, "selection": why})
            continue
        _assign(fault, person, role, actor)
        roles.append({"role": role, "person": _person_ref(person), "selection": why})
    _record(
        fault,
        "fault.declared",
        actor=actor,
        source=source,
        data={
            "title": title,
            "level": level,
            "impact": fault.impact,
            "affected_business": {"id": affected_business.pk, "name": affected_business.name},
            "suspected_cause_businesses": [{"id": b.pk, "name": b.name} for b in suspects],
            "roles": roles,
            "unfilled_roles": unfilled_roles,
        },
    )
    return fault


@transaction.atomic
def fault_change_level(*, fault: Fault, level: int, reason: str = "", actor=None) -> Fault:
    fault = _lock(fault)
    _require_manager(actor, fault)
    _require_not_closed(fault)
    level = _level(level)
    if level == fault.level:
        raise InvalidInput(f"The fault is already {fault.get_level_display()}.")
    previous = fault.level
    fault.level = level
    fault.save(update_fields=["level"])
    _record(
        fault,
        "fault.level_changed",
        actor=actor,
        data={"from": previous, "to": level, "raised": level < previous, "reason": reason},
    )
    return fault


def _change_status(fault: Fault, *, to: str, allowed_from: tuple, actor, kind: str, data: dict | None = None) -> Fault:
    fault = _lock(fault)
    _require_manager(actor, fault)
    if fault.status not in allowed_from:
        raise InvalidTransition(
            f"Fault #{fault.pk} is {fault.get_status_display().lower()}; "
            f"it can become {Fault.Status(to).label.lower()} only from "
            f"{' or '.join(Fault.Status(s).label.lower() for s in allowed_from)}."
        )
    previous = fault.status
    now = timezone.now()
    fault.status = to
    if to == Fault.Status.MITIGATED:
        fault.mitigated_at = now
    elif to == Fault.Status.RECOVERED:
        fault.recovered_at = now
        # Recovering without an explicit mitigation step means it was mitigated by recovering.
        fault.mitigated_at = fault.mitigated_at or now
    elif to == Fault.Status.CLOSED:
        fault.closed_at = now
    elif to == Fault.Status.DECLARED:
        fault.mitigated_at = fault.recovered_at = fault.closed_at = None
    fault.save(update_fields=["status", "mitigated_at", "recovered_at", "closed_at"])
    data = {"from": previous, "to": to, **(data or {})}
    if to == Fault.Status.RECOVERED:
        # The summary is part of the recovery: same transaction, same event.
        data["summary"] = metrics.summary_store(fault=fault, at=now).data
    _record(fault, kind, actor=actor, data=data)
    return fault


@transaction.atomic
def fault_mark_mitigated(*, fault: Fault, actor=None) -> Fault:
    return _change_status(
        fault, to=Fault.Status.MITIGATED, allowed_from=(Fault.Status.DECLARED,), actor=actor, kind="fault.mitigated"
    )


@transaction.atomic
def fault_mark_recovered(*, fault: Fault, actor=None) -> Fault:
    return _change_status(
        fault, to=Fault.Status.RECOVERED, allowed_from=Fault.OPEN_STATUSES, actor=actor, kind="fault.recovered"
    )


@transaction.atomic
def fault_close(*, fault: Fault, actor=None) -> Fault:
    return _change_status(
        fault, to=Fault.Status.CLOSED, allowed_from=(Fault.Status.RECOVERED,), actor=actor, kind="fault.closed"
    )


@transaction.atomic
def fault_reopen(*, fault: Fault, reason: str = "", actor=None) -> Fault:
    return _change_status(
        fault,
        to=Fault.Status.DECLARED,
        allowed_from=(Fault.Status.RECOVERED, Fault.Status.CLOSED),
        actor=actor,
        kind="fault.reopened",
        data={"reason": reason},
    )


# --- roles --------------------------------------------------------------------------------


@transaction.atomic
def role_assign(*, fault: Fault, person: Person, role: str, actor=None) -> RoleAssignment:
    fault = _lock(fault)
    _require_manager(actor, fault)
    _require_not_closed(fault)
    if role not in Role.values:
        raise InvalidInput(f"Role must be one of {', '.join(Role.values)}.")
    active = RoleAssignment.objects.filter(fault=fault, role=role, ended_at__isnull=True)
    if active.filter(person=person).exists():
        raise InvalidInput(f"{person.name} is already {Role(role).label.lower()} of this fault.")
    replaced = None
    if role == Role.COMMANDER:
        previous = active.select_related("person").first()
        if previous is not None:
            previous.ended_at = timezone.now()
            previous.save(update_fields=["ended_at"])
            replaced = _person_ref(previous.person)
    assignment = _assign(fault, person, role, actor)
    _record(
        fault,
        "role.assigned",
        actor=actor,
        data={"role": role, "person": _person_ref(person), "replaced": replaced},
    )
    return assignment


@transaction.atomic
def role_check_in(*, fault: Fault, person: Person, actor=None, via: str = "api") -> list[RoleAssignment]:
    """Check `person` in to every role he holds in the fault.

    Idempotent: checking in again (a repeated card click, a retried request) changes
    nothing and writes no event.
    """
    fault = _lock(fault)
    if actor is not None:
        own = permissions.person_of(actor) == person
        _require(own or permissions.can_manage(actor, fault), "You may check in only yourself.")
    _require_not_closed(fault)
    assignments = list(RoleAssignment.objects.filter(fault=fault, person=person, ended_at__isnull=True))
    if not assignments:
        raise InvalidInput(f"{person.name} has no role in fault #{fault.pk}.")
    pending = [a for a in assignments if a.checked_in_at is None]
    if not pending:
        return assignments
    now = timezone.now()
    RoleAssignment.objects.filter(pk__in=[a.pk for a in pending]).update(checked_in_at=now)
    for a in pending:
        a.checked_in_at = now
    if fault.first_check_in_at is None:
        fault.first_check_in_at = now
        fault.save(update_fields=["first_check_in_at"])
    _record(
        fault,
        "role.checked_in",
        actor=actor,
        data={"person": _person_ref(person), "roles": [a.role for a in pending], "via": via},
    )
    return assignments


# --- tasks --------------------------------------------------------------------------------


@transaction.atomic
def task_create(
    *,
    fault: Fault,
    assignee: Person,
    kind: str,
    title: str,
    description: str = "",
    due_at: datetime | None = None,
    actor=None,
) -> Task:
    fault = _lock(fault)
    _require_manager(actor, fault)
    _require_not_closed(fault)
    if kind not in Task.Kind.values:
        raise InvalidInput(f"Task kind must be one of {', '.join(Task.Kind.values)}.")
    title = (title or "").strip()
    if not title:
        raise InvalidInput("A task needs a title.")
    if not RoleAssignment.objects.filter(fault=fault, person=assignee, ended_at__isnull=True).exists():
        raise InvalidInput(f"{assignee.name} has no role in this fault; assign him as an emergency handler first.")
    now = timezone.now()
    if due_at is None:
        sla = _sla(fault.level)
        due_at = now + (sla.task_response_within if sla else FALLBACK_TASK_RESPONSE)
    elif due_at <= now:
        raise InvalidInput("The due time must be in the future.")
    task = Task.objects.create(
        fault=fault,
        assignee=assignee,
        kind=kind,
        title=title,
        description=description or "",
        created_by=_user(actor),
        created_at=now,
        due_at=due_at,
    )
    _record(
        fault,
        "task.created",
        actor=actor,
        data={
            "task": task.pk,
            "title": title,
            "kind": kind,
            "assignee": _person_ref(assignee),
            "due_at": due_at.isoformat(),
        },
    )
    return task


_TASK_NEXT = {
    Task.Status.OPEN: {Task.Status.ACKNOWLEDGED, Task.Status.DONE, Task.Status.CANCELLED},
    Task.Status.ACKNOWLEDGED: {Task.Status.DONE, Task.Status.CANCELLED},
    Task.Status.DONE: set(),
    Task.Status.CANCELLED: set(),
}


@transaction.atomic
def task_update(
    *,
    task: Task,
    actor=None,
    status: str | None = None,
    progress: str | None = None,
    due_at: datetime | None = None,
) -> Task:
    fault = _lock(task.fault)
    task = Task.objects.select_related("assignee").get(pk=task.pk)
    task.fault = fault
    if actor is not None:
        _require(
            permissions.can_update_task(actor, task),
            "Only the task's assignee or the fault's commander may update this task.",
        )
    _require_not_closed(fault)
    changes: dict = {}
    now = timezone.now()
    if status is not None and status != task.status:
        if status not in Task.Status.values:
            raise InvalidInput(f"Task status must be one of {', '.join(Task.Status.values)}.")
        if status not in _TASK_NEXT[task.status]:
            raise InvalidTransition(f"A task that is {task.get_status_display().lower()} cannot become {status}.")
        if status == Task.Status.CANCELLED and actor is not None:
            _require(permissions.can_manage(actor, fault), "Only the fault's commander may cancel a task.")
        changes["status"] = {"from": task.status, "to": status}
        task.status = status
        if task.acknowledged_at is None:
            task.acknowledged_at = now
        if status in (Task.Status.DONE, Task.Status.CANCELLED):
            task.completed_at = now
    if progress is not None and progress.strip():
        task.progress = progress.strip()
        changes["progress"] = task.progress
        # Reporting progress is an answer to the task, just as acknowledging it is.
        if task.acknowledged_at is None:
            task.acknowledged_at = now
            if task.status == Task.Status.OPEN:
                changes["status"] = {"from": task.status, "to": Task.Status.ACKNOWLEDGED}
                task.status = Task.Status.ACKNOWLEDGED
    if due_at is not None and due_at != task.due_at:
        if actor is not None:
            _require(permissions.can_manage(actor, fault), "Only the fault's commander may move a due time.")
        if due_at <= now:
            raise InvalidInput("The due time must be in the future.")
        changes["due_at"] = due_at.isoformat()
        task.due_at = due_at
    if not changes:
        raise InvalidInput("Nothing to update: give a new status, progress or due time.")
    task.save()
    _record(
        fault,
        "task.updated",
        actor=actor,
        data={"task": task.pk, "title": task.title, "assignee": _person_ref(task.assignee), **changes},
    )
    return task


# --- mitigation plans ---------------------------------------------------------------------


def _guardrail(plan: MitigationPlan, fault: Fault, doing: str) -> None:
    if plan.expected_impact < fault.level:
        raise GuardrailViolation(
            f"Cannot {doing} this plan: its expected impact ({plan.get_expected_impact_display()}) is more severe "
            f"than the fault's level ({fault.get_level_display()}). Raise the fault to "
            f"{plan.get_expected_impact_display()} first; the level change is recorded on the timeline."
        )


def _locked_plan(plan: MitigationPlan) -> tuple[MitigationPlan, Fault]:
    fault = _lock(plan.fault)
    plan = MitigationPlan.objects.get(pk=plan.pk)
    plan.fault = fault
    return plan, fault


def _plan_data(plan: MitigationPlan, **extra) -> dict:
    return {"plan": plan.pk, "description": plan.description, "expected_impact": plan.expected_impact, **extra}


@transaction.atomic
def plan_propose(*, fault: Fault, description: str, expected_impact: int, actor=None) -> MitigationPlan:
    fault = _lock(fault)
    if actor is not None:
        _require(permissions.is_participant(actor, fault), "Only people with a role in this fault may propose plans.")
    _require_open(fault, "propose a plan")
    description = (description or "").strip()
    if not description:
        raise InvalidInput("A plan needs a description.")
    plan = MitigationPlan.objects.create(
        fault=fault,
        description=description,
        expected_impact=_level(expected_impact),
        proposed_by=_user(actor),
        proposed_at=timezone.now(),
    )
    _record(fault, "plan.proposed", actor=actor, data=_plan_data(plan))
    return plan


def _require_plan_status(plan: MitigationPlan, status: str, doing: str) -> None:
    if plan.status != status:
        raise InvalidTransition(f"Cannot {doing} a plan that is {plan.get_status_display().lower()}.")


@transaction.atomic
def plan_approve(*, plan: MitigationPlan, actor=None) -> MitigationPlan:
    plan, fault = _locked_plan(plan)
    _require_manager(actor, fault)
    _require_open(fault, "approve a plan")
    _require_plan_status(plan, MitigationPlan.Status.PROPOSED, "approve")
    _guardrail(plan, fault, "approve")
    plan.status = MitigationPlan.Status.APPROVED
    plan.decided_by = _user(actor)
    plan.decided_at = timezone.now()
    plan.save()
    _record(fault, "plan.approved", actor=actor, data=_plan_data(plan, fault_level=fault.level))
    return plan


@transaction.atomic
def plan_reject(*, plan: MitigationPlan, reason: str = "", actor=None) -> MitigationPlan:
    plan, fault = _locked_plan(plan)
    _require_manager(actor, fault)
    _require_not_closed(fault)
    _require_plan_status(plan, MitigationPlan.Status.PROPOSED, "reject")
    plan.status = MitigationPlan.Status.REJECTED
    plan.decided_by = _user(actor)
    plan.decided_at = timezone.now()
    plan.rejection_reason = reason or ""
    plan.save()
    _record(fault, "plan.rejected", actor=actor, data=_plan_data(plan, reason=plan.rejection_reason))
    return plan


@transaction.atomic
def plan_execute(*, plan: MitigationPlan, actor=None) -> MitigationPlan:
    plan, fault = _locked_plan(plan)
    _require_manager(actor, fault)
    _require_open(fault, "execute a plan")
    _require_plan_status(plan, MitigationPlan.Status.APPROVED, "execute")
    # The level may have been lowered since approval; the guardrail holds at execution too.
    _guardrail(plan, fault, "execute")
    plan.status = MitigationPlan.Status.EXECUTED
    plan.executed_at = timezone.now()
    plan.save()
    _record(fault, "plan.executed", actor=actor, data=_plan_data(plan))
    return plan


# --- updates ------------------------------------------------------------------------------


@transaction.atomic
def status_update_post(
    *, fault: Fault, body: str, kind: str = StatusUpdate.Kind.PROGRESS, actor=None
) -> StatusUpdate:
    fault = _lock(fault)
    if kind not in StatusUpdate.Kind.values:
        raise InvalidInput(f"Update kind must be one of {', '.join(StatusUpdate.Kind.values)}.")
    if actor is not None:
        if kind == StatusUpdate.Kind.PROGRESS:
            _require(
                permissions.can_manage(actor, fault),
                "Only the fault's commander may post progress updates; handlers add troubleshooting notes.",
            )
        else:
            _require(permissions.is_participant(actor, fault), "Only people with a role in this fault may add notes.")
    _require_not_closed(fault)
    body = (body or "").strip()
    if not body:
        raise InvalidInput("An update needs some text.")
    update = StatusUpdate.objects.create(
        fault=fault,
        kind=kind,
        body=body,
        author=_user(actor),
        posted_at=timezone.now(),
    )
    _record(fault, "update.posted", actor=actor, data={"update": update.pk, "kind": kind, "body": body})
    return update


# --- delivery outcomes (written by the notifications app) ---------------------------------


@transaction.atomic
def delivery_outcome_record(*, fault: Fault, text: str, data: dict) -> TimelineEvent:
    """Put one delivery outcome on the timeline ("SMS to Li Lei delivered").

    Recorded whatever the fault's status: a receipt that arrives after closing is still a fact.
    """
    fault = _lock(fault)
    return _record(fault, "delivery.outcome", actor=None, data={"text": text, **data})


# --- suspects, deadlines and the conference -----------------------------------------------


@transaction.atomic
def fault_suspect_add(*, fault: Fault, business: Business, actor=None) -> Fault:
    """Name one more business as a suspected cause; its emergency contacts are pulled in."""
    fault = _lock(fault)
    _require_manager(actor, fault)
    _require_open(fault, "add a suspected cause")
    if business.pk == fault.affected_business_id:
        raise InvalidInput(f"{business.name} is the affected business.")
    if fault.suspected_cause_businesses.filter(pk=business.pk).exists():
        raise InvalidInput(f"{business.name} is already a suspected cause.")
    fault.suspected_cause_businesses.add(business)
    _record(fault, "fault.suspect_added", actor=actor, data={"business": {"id": business.pk, "name": business.name}})
    return fault


_SLA_WHAT = ("check_in", "task_response", "progress_update", "notify")


def _sla_record(fault: Fault, kind: str, what: str, text: str, data: dict) -> TimelineEvent:
    if what not in _SLA_WHAT:
        raise InvalidInput(f"An SLA is one of {', '.join(_SLA_WHAT)}.")
    fault = _lock(fault)
    return _record(fault, kind, actor=None, data={"what": what, "text": text, **data})


@transaction.atomic
def sla_reminder_record(*, fault: Fault, what: str, text: str, data: dict) -> TimelineEvent:
    """Someone was reminded of a deadline that has passed ("Task … not acknowledged: Li Lei reminded")."""
    return _sla_record(fault, "sla.reminder", what, text, data)


@transaction.atomic
def sla_breach_record(*, fault: Fault, what: str, text: str, data: dict) -> TimelineEvent:
    """A deadline was missed and the product acted: re-paged, escalated, told the commander."""
    return _sla_record(fault, "sla.breached", what, text, data)


@transaction.atomic
def conference_request(*, fault: Fault, actor=None) -> TimelineEvent:
    """Ask for a video conference with everyone who has checked in; the link follows."""
    fault = _lock(fault)
    _require_manager(actor, fault)
    _require_open(fault, "start a conference")
    requester = permissions.person_of(actor)
    return _record(
        fault,
        "conference.requested",
        actor=actor,
        data={"requested_by": _person_ref(requester) if requester is not None else None},
    )


@transaction.atomic
def conference_started(*, fault: Fault, url: str, data: dict) -> TimelineEvent:
    """The conference is up; `url` is its join link ("externalLinkUrl")."""
    fault = _lock(fault)
    return _record(fault, "conference.started", actor=None, data={"url": url, **data})

"""Deadlines inside the response: the repeated notification, a progress update that is due,
a task not acknowledged in time. Each lives in a Deadline row the scheduler looks at."""

from django.db import transaction
from django.utils import timezone

from incidents import selectors as incident_selectors
from incidents import services as incident_services
from incidents.models import Fault, RoleAssignment, StatusUpdate, Task
from incidents.selectors import Sla
from roster.models import Person

from .. import channels, texts
from ..models import Deadline, Delivery
from ..outbox.rows import delivery_create, lock_after_its_fault
from .rounds import message_channel, notification_round

Role = RoleAssignment.Role


def _ref(person: Person) -> dict:
    return {"id": person.pk, "name": person.name}


def deadline_set(fault: Fault, kind: str, *, due_at, task: Task | None = None, count: int = 0) -> Deadline:
    """The fault's deadline of `kind` (one per task for task deadlines), written once.

    Called inside the service's transaction, which holds the fault (or has just created
    it): nobody else writes this fault's key between the read and the insert.
    """
    key = f"fault:{fault.pk}:{kind}" + (f":{task.pk}" if task is not None else "")
    deadline = Deadline.objects.filter(key=key).first()
    if deadline is None:
        deadline = Deadline.objects.create(key=key, fault=fault, kind=kind, task=task, due_at=due_at, count=count)
    return deadline


def remind(fault: Fault, person: Person, *, key: str, subject: str, body: str) -> Delivery | None:
    """One message to `person` by his message channel (none when he has no way to get one)."""
    channel = message_channel(person)
    if channel is None:
        return None
    return delivery_create(
        fault=fault, channel=channel, person=person, subject=subject, body=body,
        payload={"params": channels.message_params(fault)}, idempotency_key=key,
    )


@transaction.atomic
def deadline_follow_up(*, deadline_id: int) -> str | None:
    now = timezone.now()
    d = lock_after_its_fault(
        Deadline.objects.select_related("fault", "task__assignee").filter(
            pk=deadline_id, done_at__isnull=True, due_at__lte=now
        )
    )
    if d is None:
        return None
    fault = d.fault
    if not fault.is_open:
        Deadline.objects.filter(pk=d.pk).update(done_at=now)
        return "ended"
    sla = incident_selectors.sla_for(fault.level)
    if d.kind == Deadline.Kind.RENOTIFY:
        notification_round(fault=fault, round=d.count + 1)
        Deadline.objects.filter(pk=d.pk).update(count=d.count + 1, due_at=now + sla.renotify_every)
        return "renotified"
    if d.kind == Deadline.Kind.PROGRESS:
        return _progress_overdue(d, fault, sla, now)
    return _task_overdue(d, fault, sla, now)


def _progress_overdue(d: Deadline, fault: Fault, sla: Sla, now) -> str | None:
    latest = fault.updates.filter(kind=StatusUpdate.Kind.PROGRESS).order_by("-posted_at").first()
    since = latest.posted_at if latest else fault.declared_at
    if since + sla.progress_update_every > now:
        Deadline.objects.filter(pk=d.pk).update(due_at=since + sla.progress_update_every)
        return None
    minutes = int(sla.progress_update_every.total_seconds() // 60)
    reminded = []
    holders = (incident_selectors.role_holder(fault.pk, Role.FAULT_HANDLER), incident_selectors.role_holder(fault.pk, Role.COMMANDER))
    for person in dict.fromkeys(p for p in holders if p is not None):
        subject, body = texts.progress_due(fault, language=person.language, minutes=minutes)
        remind(fault, person, key=f"fault:{fault.pk}:progress:{d.count + 1}:{person.pk}", subject=subject, body=body)
        reminded.append(person)
    text = f"No progress update for {minutes} min" + (
        f": {' and '.join(p.name for p in reminded)} reminded" if reminded else ": nobody to remind"
    )
    incident_services.sla_breach_record(
        fault=fault, what="progress_update", text=text,
        data={"since": since.isoformat(), "reminded": [_ref(p) for p in reminded], "missed": d.count + 1},
    )
    Deadline.objects.filter(pk=d.pk).update(count=d.count + 1, due_at=now + sla.progress_update_every)
    return "breached"


def _task_overdue(d: Deadline, fault: Fault, sla: Sla, now) -> str | None:
    task = Task.objects.select_related("assignee").get(pk=d.task_id)
    if task.acknowledged_at is not None or task.status in (Task.Status.DONE, Task.Status.CANCELLED):
        Deadline.objects.filter(pk=d.pk).update(done_at=now)
        return None
    if d.stage == 0 and task.due_at > now:
        Deadline.objects.filter(pk=d.pk).update(due_at=task.due_at)  # the due time was moved
        return None
    assignee = task.assignee
    data = {"task": task.pk, "title": task.title, "assignee": _ref(assignee), "due_at": task.due_at.isoformat()}
    # Keyed by the due time too: once the commander moves it, a new reminder is a new message.
    due = int(task.due_at.timestamp())
    if d.stage == 0:
        subject, body = texts.task_waiting(fault, task, language=assignee.language)
        remind(fault, assignee, key=f"fault:{fault.pk}:task:{task.pk}:reminder:{due}", subject=subject, body=body)
        incident_services.sla_reminder_record(
            fault=fault, what="task_response",
            text=f"Task “{task.title}” not acknowledged in time: {assignee.name} reminded", data=data,
        )
        Deadline.objects.filter(pk=d.pk).update(stage=1, due_at=now + sla.task_response_within)
        return "reminded"
    commander = incident_selectors.role_holder(fault.pk, Role.COMMANDER)
    if commander is not None:
        subject, body = texts.task_unanswered(fault, task, language=commander.language, assignee=assignee.name)
        remind(fault, commander, key=f"fault:{fault.pk}:task:{task.pk}:flagged:{due}", subject=subject, body=body)
    text = f"Task “{task.title}” still not acknowledged by {assignee.name}: " + (
        f"flagged to {commander.name}" if commander else "no commander to tell"
    )
    incident_services.sla_breach_record(
        fault=fault, what="task_response", text=text,
        data={**data, "flagged_to": _ref(commander) if commander else None},
    )
    Deadline.objects.filter(pk=d.pk).update(stage=2, done_at=now)
    return "breached"

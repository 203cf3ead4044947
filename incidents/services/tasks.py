"""Tasks the commander hands to emergency handlers, and the handlers' answers to them."""

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from roster.models import Person

from .. import permissions, selectors
from ..errors import InvalidInput, InvalidTransition
from ..event_types import EventKind
from ..models import Fault, Task
from ._common import _lock, _person_ref, _record, _require, _require_manager, _require_not_closed, _user


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
    if not selectors.active_roles(fault.pk, assignee.pk).exists():
        raise InvalidInput(f"{assignee.name} has no role in this fault; assign him as an emergency handler first.")
    now = timezone.now()
    if due_at is None:
        due_at = now + selectors.sla_for(fault.level).task_response_within
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
        EventKind.TASK_CREATED,
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
        EventKind.TASK_UPDATED,
        actor=actor,
        data={"task": task.pk, "title": task.title, "assignee": _person_ref(task.assignee), **changes},
    )
    return task

"""What each timeline event calls for, written inside the service's transaction.

Subscribed with `in_transaction=True` (see incidents.events): the outbox rows, the group,
engagements and deadlines written here commit or roll back with the event, so that a
committed change can never lose its messages. Nothing here writes a timeline event;
anything that needs one of its own is left to the scheduler (`scheduler.follow_ups_run`),
which is queued right after commit.
"""

from django.db import transaction
from django.utils import timezone

from incidents import selectors as incident_selectors
from incidents.event_types import EventKind
from incidents.models import Fault, RoleAssignment, StatusUpdate, Task
from roster import selectors as roster_selectors
from roster.models import Business, Person

from .. import texts
from ..models import Deadline
from ..outbox.rows import deliveries_cancel, deliveries_cancelled_record
from . import conference, group
from .deadlines import deadline_set, remind
from .engagements import engagement_checked_in, engagement_open, engagements_end
from .rounds import notification_round
from .scheduler import follow_up_after_commit

Role = RoleAssignment.Role


def on_timeline_event(event) -> None:
    """Write the rows the event calls for, and no event."""
    handler = _HANDLERS.get(event.kind)
    if handler is not None:
        handler(event, event.fault)
    if event.kind in texts.SYNC:
        group.sync(event, event.fault)


def _person(event, key: str = "person") -> Person | None:
    return Person.objects.filter(pk=(event.data.get(key) or {}).get("id")).first()


def _declared(event, fault: Fault) -> None:
    now = timezone.now()
    people: dict[Person, str] = {}
    for a in RoleAssignment.objects.filter(fault=fault, ended_at__isnull=True).select_related("person"):
        people.setdefault(a.person, a.get_role_display().lower())
    for business in [fault.affected_business, *fault.suspected_cause_businesses.all()]:
        for person in roster_selectors.emergency_contacts(business=business, at=now):
            people.setdefault(person, f"emergency contact of {business.name}")
    group.group_open(fault=fault, people=list(people))
    for person, reason in people.items():
        engagement_open(fault=fault, person=person, reason=reason)
    sla = incident_selectors.sla_for(fault.level)
    # The first notification goes now (well within notify_within); the scheduler repeats it.
    notification_round(fault=fault, round=1)
    deadline_set(fault, Deadline.Kind.RENOTIFY, due_at=now + sla.renotify_every, count=1)
    deadline_set(fault, Deadline.Kind.PROGRESS, due_at=now + sla.progress_update_every)
    follow_up_after_commit(fault.pk)


def _role_assigned(event, fault: Fault) -> None:
    person = _person(event)
    if person is None:
        return
    replaced = event.data.get("replaced")
    if replaced and not incident_selectors.active_roles(fault.pk, replaced["id"]).exists():
        # A replaced commander with no other role cannot check in: stop dialling him.
        old = Person.objects.filter(pk=replaced["id"]).first()
        if old is not None:
            reason = f"{old.name} is no longer commander"
            engagements_end(fault=fault, reason=reason, person=old)
            _cancel_after_commit(fault, reason, person=old)
    if fault.is_open:
        role = Role(event.data.get("role")).label.lower() if event.data.get("role") in Role.values else "member"
        engagement_open(fault=fault, person=person, reason=role)
        group.group_join(fault=fault, person=person)
        follow_up_after_commit(fault.pk)


def _suspect_added(event, fault: Fault) -> None:
    business = Business.objects.filter(pk=(event.data.get("business") or {}).get("id")).first()
    if business is None or not fault.is_open:
        return
    for person in roster_selectors.emergency_contacts(business=business, at=timezone.now()):
        engagement_open(fault=fault, person=person, reason=f"emergency contact of {business.name}")
        group.group_join(fault=fault, person=person)
    follow_up_after_commit(fault.pk)


def _checked_in(event, fault: Fault) -> None:
    person = _person(event)
    if person is None or not incident_selectors.has_checked_in(fault.pk, person.pk):
        return
    engagement_checked_in(fault=fault, person=person)
    _cancel_after_commit(fault, f"{person.name} checked in", person=person)


def _resolved(event, fault: Fault) -> None:
    reason = f"the fault is {event.data.get('to', 'resolved')}"
    engagements_end(fault=fault, reason=reason)
    Deadline.objects.filter(fault=fault, done_at__isnull=True).update(done_at=timezone.now())
    _cancel_after_commit(fault, reason)
    if event.kind == EventKind.FAULT_RECOVERED:
        # Keyed by the event: a fault reopened and recovered again is announced again.
        notification_round(fault=fault, round=f"recovered:{event.seq}", final=True)


def _reopened(event, fault: Fault) -> None:
    # Repeats and progress deadlines start again; people are pulled in again by new assignments.
    now, sla = timezone.now(), incident_selectors.sla_for(fault.level)
    group.group_create_again(fault, seq=event.seq)
    Deadline.objects.filter(fault=fault, kind=Deadline.Kind.RENOTIFY).update(due_at=now, done_at=None)
    Deadline.objects.filter(fault=fault, kind=Deadline.Kind.PROGRESS).update(
        due_at=now + sla.progress_update_every, done_at=None, stage=0
    )


def _update_posted(event, fault: Fault) -> None:
    if event.data.get("kind") != StatusUpdate.Kind.PROGRESS:
        return
    due = timezone.now() + incident_selectors.sla_for(fault.level).progress_update_every
    Deadline.objects.filter(fault=fault, kind=Deadline.Kind.PROGRESS, done_at__isnull=True).update(due_at=due, stage=0)


def _task_created(event, fault: Fault) -> None:
    task = Task.objects.filter(pk=event.data.get("task")).first()
    if task is not None:
        deadline_set(fault, Deadline.Kind.TASK, due_at=task.due_at, task=task)


def _task_updated(event, fault: Fault) -> None:
    task = Task.objects.filter(pk=event.data.get("task")).first()
    if task is None:
        return
    rows = Deadline.objects.filter(fault=fault, kind=Deadline.Kind.TASK, task=task, done_at__isnull=True)
    if task.acknowledged_at is not None or task.status in (Task.Status.DONE, Task.Status.CANCELLED):
        rows.update(done_at=timezone.now())
    elif "due_at" in event.data:
        rows.update(due_at=task.due_at, stage=0)


def _conference_requested(event, fault: Fault) -> None:
    conference.conference_start(event, fault)


def _monitoring_cleared(event, fault: Fault) -> None:
    # Monitoring is not the judge of recovery: the commander is asked.
    commander = incident_selectors.role_holder(fault.pk, Role.COMMANDER)
    if commander is None:
        return
    subject, body = texts.monitoring_cleared(fault, event, language=commander.language)
    remind(fault, commander, key=f"fault:{fault.pk}:cleared:{event.seq}", subject=subject, body=body)


def _cancel_after_commit(fault: Fault, reason: str, *, person: Person | None = None) -> None:
    """Cancel now, in the service's transaction; put the count on the timeline after commit."""
    count = deliveries_cancel(fault=fault, reason=reason, person=person)
    if count:
        fault_id, person_id = fault.pk, person.pk if person else None

        def record():
            deliveries_cancelled_record(
                fault=Fault.objects.get(pk=fault_id),
                count=count,
                reason=reason,
                person=Person.objects.get(pk=person_id) if person_id else None,
            )

        transaction.on_commit(record)


_HANDLERS = {
    EventKind.FAULT_DECLARED: _declared,
    EventKind.ROLE_ASSIGNED: _role_assigned,
    EventKind.ROLE_CHECKED_IN: _checked_in,
    EventKind.FAULT_SUSPECT_ADDED: _suspect_added,
    EventKind.MONITORING_CLEARED: _monitoring_cleared,
    EventKind.FAULT_RECOVERED: _resolved,
    EventKind.FAULT_CLOSED: _resolved,
    EventKind.FAULT_REOPENED: _reopened,
    EventKind.UPDATE_POSTED: _update_posted,
    EventKind.TASK_CREATED: _task_created,
    EventKind.TASK_UPDATED: _task_updated,
    EventKind.CONFERENCE_REQUESTED: _conference_requested,
}

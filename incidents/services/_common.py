"""What every service shares: the fault lock, the one timeline write, and the refusals.

Private to this package; other apps call the services, never these.
"""

from django.db import connection
from django.utils import timezone

from roster.models import Person

from .. import events, permissions
from ..errors import InvalidInput, InvalidTransition, NotAllowed
from ..event_types import EventKind
from ..models import Fault, Level, RoleAssignment, TimelineEvent

Role = RoleAssignment.Role


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


_NEXT_SEQ = "UPDATE {table} SET last_seq = last_seq + 1 WHERE id = %s RETURNING last_seq"


def _next_seq(fault_id: int) -> int:
    """The fault's next timeline number, counted up and read in one statement.

    The update locks the fault's row, so numbers are handed out in commit order and never
    twice (PostgreSQL and SQLite ≥ 3.35 both return the new value).
    """
    with connection.cursor() as cursor:
        cursor.execute(_NEXT_SEQ.format(table=connection.ops.quote_name(Fault._meta.db_table)), [fault_id])
        return cursor.fetchone()[0]


def _record(fault: Fault, kind: EventKind, *, actor, data: dict, source: str | None = None) -> TimelineEvent:
    fault.last_seq = _next_seq(fault.pk)
    event = TimelineEvent.objects.create(
        fault=fault,
        seq=fault.last_seq,
        # The plain string, as a reader of the row gets it back: subscribers called inside
        # this transaction must see the same event as those that read it later.
        kind=EventKind(kind).value,
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


def _assign(fault: Fault, person: Person, role: str, actor) -> RoleAssignment:
    return RoleAssignment.objects.create(
        fault=fault,
        person=person,
        role=role,
        assigned_by=_user(actor),
        assigned_at=timezone.now(),
    )

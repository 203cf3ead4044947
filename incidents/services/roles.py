"""Roles on a fault (commander, fault handler, emergency handler) and checking in to them."""

from django.db import transaction
from django.utils import timezone

from roster.models import Person

from .. import permissions, selectors
from ..errors import InvalidInput
from ..event_types import EventKind
from ..models import Fault, RoleAssignment
from ._common import Role, _assign, _lock, _person_ref, _record, _require, _require_manager, _require_not_closed


@transaction.atomic
def role_assign(*, fault: Fault, person: Person, role: str, actor=None) -> RoleAssignment:
    fault = _lock(fault)
    _require_manager(actor, fault)
    _require_not_closed(fault)
    if role not in Role.values:
        raise InvalidInput(f"Role must be one of {', '.join(Role.values)}.")
    if selectors.active_roles(fault.pk, person.pk).filter(role=role).exists():
        raise InvalidInput(f"{person.name} is already {Role(role).label.lower()} of this fault.")
    replaced = None
    if role == Role.COMMANDER:
        # The assignment row itself, not just its holder: it is ended here.
        previous = (
            RoleAssignment.objects.filter(fault=fault, role=role, ended_at__isnull=True).select_related("person").first()
        )
        if previous is not None:
            previous.ended_at = timezone.now()
            previous.save(update_fields=["ended_at"])
            replaced = _person_ref(previous.person)
    assignment = _assign(fault, person, role, actor)
    _record(
        fault,
        EventKind.ROLE_ASSIGNED,
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
    assignments = list(selectors.active_roles(fault.pk, person.pk))
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
        EventKind.ROLE_CHECKED_IN,
        actor=actor,
        data={"person": _person_ref(person), "roles": [a.role for a in pending], "via": via},
    )
    return assignments

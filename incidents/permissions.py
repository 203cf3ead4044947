"""Who may do what to a fault. Pure reads; services and views both ask here."""

from .models import Fault, RoleAssignment, Task


def person_of(user):
    if user is None or not user.is_authenticated:
        return None
    return getattr(user, "person", None)


def _active_roles(user, fault: Fault):
    person = person_of(user)
    if person is None:
        return RoleAssignment.objects.none()
    return RoleAssignment.objects.filter(fault=fault, person=person, ended_at__isnull=True)


def can_view(user, fault: Fault) -> bool:
    if user is None or not user.is_authenticated:
        return False
    return user.has_perm("incidents.view_fault") or _active_roles(user, fault).exists()


def can_declare(user) -> bool:
    return user is not None and user.is_authenticated and (
        user.has_perm("incidents.add_fault") or user.has_perm("incidents.manage_fault")
    )


def can_manage(user, fault: Fault) -> bool:
    """The fault's commander, or anyone with the manage permission."""
    if user is None or not user.is_authenticated:
        return False
    if user.has_perm("incidents.manage_fault"):
        return True
    return _active_roles(user, fault).filter(role=RoleAssignment.Role.COMMANDER).exists()


def is_participant(user, fault: Fault) -> bool:
    return can_manage(user, fault) or _active_roles(user, fault).exists()


def can_update_task(user, task: Task) -> bool:
    person = person_of(user)
    return can_manage(user, task.fault) or (person is not None and task.assignee_id == person.pk)

"""Reads about faults that span tables, shared by the services, the notifications and the pages."""

from dataclasses import dataclass
from datetime import timedelta

from . import permissions
from .models import Fault, RoleAssignment, SLAPolicy


def visible_faults(user, queryset=None):
    """Faults the user may see: all with the view permission, else those he has a role in."""
    qs = Fault.objects.all() if queryset is None else queryset
    if user.has_perm("incidents.view_fault"):
        return qs
    person = permissions.person_of(user)
    if person is None:
        return qs.none()
    return qs.filter(roles__person=person, roles__ended_at__isnull=True).distinct()


# --- roles and SLAs: read here by the services, the notifications and the pages ----------

# What the product promises when an admin has deleted the level's SLA row (the P1 defaults).
FALLBACK_SLA = {
    "notify_within": timedelta(minutes=5),
    "check_in_within": timedelta(minutes=10),
    "task_response_within": timedelta(minutes=15),
    "progress_update_every": timedelta(minutes=15),
    "renotify_every": timedelta(minutes=30),
}


@dataclass(frozen=True)
class Sla:
    notify_within: timedelta
    check_in_within: timedelta
    task_response_within: timedelta
    progress_update_every: timedelta
    renotify_every: timedelta


def sla_for(level: int) -> Sla:
    """The SLA of a fault level, or the P1 defaults if its row was deleted."""
    row = SLAPolicy.objects.filter(level=level).first()
    if row is None:
        return Sla(**FALLBACK_SLA)
    return Sla(**{name: getattr(row, name) for name in FALLBACK_SLA})


def active_roles(fault_id: int, person_id: int):
    """The person's roles on the fault that have not ended."""
    return RoleAssignment.objects.filter(fault_id=fault_id, person_id=person_id, ended_at__isnull=True)


def has_checked_in(fault_id: int, person_id: int) -> bool:
    """True when the person holds a role on the fault and has checked in to every one."""
    roles = active_roles(fault_id, person_id)
    return roles.exists() and not roles.filter(checked_in_at__isnull=True).exists()


def role_holder(fault_id: int, role: str):
    """The person who holds `role` (commander, fault handler) on the fault now, or None."""
    a = (
        RoleAssignment.objects.filter(fault_id=fault_id, role=role, ended_at__isnull=True)
        .select_related("person")
        .order_by("assigned_at", "pk")
        .first()
    )
    return a.person if a else None

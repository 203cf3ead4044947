"""The list of faults a user may see, with his own roles in each."""

from dataclasses import dataclass

from django.db.models import Case, IntegerField, Value, When

from incidents import permissions
from incidents.models import Fault, RoleAssignment
from incidents.selectors import visible_faults

# The list is bounded: a year of faults never grows the page.
FAULTS_ON_LIST = 300


@dataclass
class FaultRow:
    fault: Fault
    my_roles: list[str]


def fault_rows(user) -> list[FaultRow]:
    """Open faults first (most severe, then newest), then the rest, newest first."""
    faults = list(
        visible_faults(user, Fault.objects.select_related("affected_business"))
        .annotate(
            closed_rank=Case(
                When(status__in=Fault.OPEN_STATUSES, then=Value(0)), default=Value(1), output_field=IntegerField()
            )
        )
        .order_by("closed_rank", Case(When(closed_rank=0, then="level"), default=Value(0)), "-declared_at")[
            :FAULTS_ON_LIST
        ]
    )
    person = permissions.person_of(user)
    mine: dict[int, list[str]] = {}
    if person is not None:
        # One query for the whole list, rather than one per fault.
        for fault_id, role in RoleAssignment.objects.filter(
            fault__in=faults, person=person, ended_at__isnull=True
        ).values_list("fault_id", "role"):
            mine.setdefault(fault_id, []).append(RoleAssignment.Role(role).label)
    return [FaultRow(fault=f, my_roles=mine.get(f.pk, [])) for f in faults]

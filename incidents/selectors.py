"""Reads about faults that span tables."""

from . import permissions
from .models import Fault


def visible_faults(user, queryset=None):
    """Faults the user may see: all with the view permission, else those he has a role in."""
    qs = Fault.objects.all() if queryset is None else queryset
    if user.has_perm("incidents.view_fault"):
        return qs
    person = permissions.person_of(user)
    if person is None:
        return qs.none()
    return qs.filter(roles__person=person, roles__ended_at__isnull=True).distinct()

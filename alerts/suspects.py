"""The suspected cause, found by itself: a business alerting together with one it depends on.

Two alerts are "together" when their first notifications arrived within
ALERTS_SUSPECT_WINDOW of each other (15 minutes by default), whichever came first:
- a fault is declared on Checkout while Payments, a dependency of Checkout, has alerted in
  the window before: Payments is a suspected cause from the start;
- Payments alerts while a fault on Checkout is open and Checkout alerted (or the fault was
  declared) in the window before: Payments is added to that fault.
Either way the suspect's on-call contacts join the group and are paged (the notifications
app reacts to the suspect being named), and the timeline says why.
"""

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Min, Q
from django.utils import timezone

from incidents import services as incident_services
from incidents.models import Fault
from roster.models import Business

from .models import Alert, Integration


def window() -> timedelta:
    return timedelta(seconds=settings.ALERTS_SUSPECT_WINDOW)


def reason(dependency: Business, since: datetime, dependant: Business) -> str:
    at = timezone.localtime(since)
    return f"{dependency.name} alerting since {at:%H:%M} {at.tzname()}, a dependency of {dependant.name}"


def alerting_dependencies(business: Business, now: datetime) -> list[tuple[Business, datetime]]:
    """The businesses `business` depends on that alerted within the window, and since when."""
    since = now - window()
    found = (
        Alert.objects.filter(business__in=business.depends_on.all(), received_at__gte=since)
        .values("business").annotate(first=Min("received_at")).order_by("first")
    )
    by_id = Business.objects.in_bulk([row["business"] for row in found])
    return [(by_id[row["business"]], row["first"]) for row in found if row["business"] in by_id]


def suspect_for_dependants(integration: Integration, now: datetime) -> None:
    """Name the integration's business, alerting now, a suspect of the open faults of the
    businesses that depend on it."""
    business = integration.business
    since = now - window()
    faults = (
        Fault.objects.filter(status__in=Fault.OPEN_STATUSES, affected_business__in=business.dependants.all())
        .exclude(suspected_cause_businesses=business)
        .filter(Q(declared_at__gte=since) | Q(alerts__received_at__gte=since))
        .select_related("affected_business").distinct()
    )
    first = None
    for fault in faults:
        if first is None:
            first = Alert.objects.filter(business=business, received_at__gte=since).aggregate(
                first=Min("received_at"))["first"] or now
        incident_services.fault_suspect_add(
            fault=fault, business=business, source=integration.name,
            reason=reason(business, first, fault.affected_business),
        )

"""The dead man's switch: monitoring that stops calling is itself a fault ("monitoring is blind").

A heartbeat integration is armed by its first call. When no call has come for its interval
plus grace, an alert fires at the integration's level and declares a fault through the
same path as any alert; the next call resolves it and recovers the fault.
"""

from django.db import transaction
from django.utils import timezone

from . import ingest
from .models import Alert, Integration
from .sources import FIRING, RESOLVED, Incoming

FINGERPRINT = "heartbeat"


@transaction.atomic
def beat(integration: Integration) -> ingest.Received:
    now = timezone.now()
    Integration.objects.filter(pk=integration.pk).update(last_heartbeat_at=now)
    if not Alert.objects.filter(integration=integration, fingerprint=FINGERPRINT, status=FIRING).exists():
        return ingest.Received()
    back = Incoming(fingerprint=FINGERPRINT, status=RESOLVED, title=_title(integration), starts_at=now, ends_at=now)
    return ingest.receive(integration, [back])


def overdue(now=None) -> list[Integration]:
    now = now or timezone.now()
    found = []
    for integration in Integration.objects.filter(
        kind=Integration.Kind.HEARTBEAT, enabled=True, last_heartbeat_at__isnull=False
    ).select_related("business"):
        if integration.last_heartbeat_at + integration.heartbeat_allowed < now:
            found.append(integration)
    return found


def check(now=None) -> list[int]:
    """Fire for every armed heartbeat that is overdue and not already firing; the faults declared."""
    now = now or timezone.now()
    faults = []
    for integration in overdue(now):
        with transaction.atomic():
            if Alert.objects.filter(integration=integration, fingerprint=FINGERPRINT, status=FIRING).exists():
                continue
            last = timezone.localtime(integration.last_heartbeat_at)
            blind = Incoming(
                fingerprint=FINGERPRINT, status=FIRING, title=_title(integration), starts_at=now,
                annotations={"summary": f"{_title(integration)}: no heartbeat since {last:%H:%M:%S} {last.tzname()}"},
            )
            result = ingest.receive(integration, [blind], level=integration.heartbeat_level,
                                    rule_name="heartbeat missed")
            faults.extend(result.faults)
    return faults


def _title(integration: Integration) -> str:
    return f"Monitoring is blind: {integration.name}"

"""Receiving alerts: store each once, join them into faults, and let the faults follow them.

One transaction per request, holding the business's row: two requests for one business
(an Alertmanager HA pair, two integrations) queue here, so that an alert is stored once and
a storm of alerts declares one fault. The fault itself only changes through
`incidents.services`, which records each change on its timeline.
"""

from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from incidents import services as incident_services
from incidents.models import Fault
from roster import selectors as roster_selectors
from roster.models import Business

from . import suspects
from .levels import level_of
from .models import Alert, Integration
from .sources import FIRING, RESOLVED, Incoming

OPEN = Fault.OPEN_STATUSES


@dataclass
class Received:
    stored: int = 0
    duplicates: int = 0
    resolved: int = 0
    faults: list[int] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"stored": self.stored, "duplicates": self.duplicates, "resolved": self.resolved,
                "faults": sorted(set(self.faults))}


def group_key(integration: Integration, labels: dict) -> str:
    if integration.kind == Integration.Kind.HEARTBEAT:
        # Blind monitoring is a fault of its own, never folded into the business's other one.
        return f"heartbeat:{integration.pk}"
    return "|".join(f"{name}={labels.get(name, '')}" for name in integration.group_by or [])[:300]


@transaction.atomic
def receive(integration: Integration, incoming: list[Incoming], *, level: int | None = None,
            rule_name: str = "") -> Received:
    """Store `incoming` for `integration` and act on it. `level` forces the level (heartbeats)."""
    now = timezone.now()
    # A no-key lock: requests for the business queue here, while faults and suspects may
    # still reference its row.
    Business.objects.select_for_update(no_key=True).filter(pk=integration.business_id).first()
    rules = list(integration.rules.all())
    result, firing, cleared = Received(), [], set()
    for item in incoming:
        if item.status == FIRING:
            alert = _firing(integration, item, now, rules, level, rule_name, result)
            if alert is not None:
                firing.append(alert)
        else:
            fault_id = _resolved(integration, item, now, rules, result)
            if fault_id is not None:
                cleared.add(fault_id)
    groups: dict[str, list[Alert]] = {}
    for alert in firing:
        groups.setdefault(alert.group_key, []).append(alert)
    for key, alerts in groups.items():
        fault = _into_fault(integration, key, alerts, now)
        if fault is not None:
            result.faults.append(fault.pk)
    if firing:
        # Every alert of this request arrived together: one look for the faults they explain.
        suspects.suspect_for_dependants(integration, now)
    for fault_id in cleared:
        _follow_resolution(integration, fault_id)
    return result


def _firing(integration, item: Incoming, now, rules, level, rule_name, result: Received) -> Alert | None:
    current = Alert.objects.filter(integration=integration, fingerprint=item.fingerprint, status=FIRING).first()
    if current is not None:
        if level is None and item.severity[:40] != current.severity:
            return _severity_changed(current, item, now, rules, result)
        _count_duplicate(current, now, result)
        return None
    late = Alert.objects.filter(integration=integration, fingerprint=item.fingerprint, status=RESOLVED,
                                starts_at=item.starts_at).first()
    if late is not None:
        # A firing notification of an alert already resolved (the other of an HA pair, late).
        _count_duplicate(late, now, result)
        return None
    if level is None:
        level, rule = level_of(rules, item)
        rule_name = rule.name if rule is not None else ""
    else:
        rule = None
    # The business's lock makes the read above final: a second firing row for this alert
    # cannot appear meanwhile (and the database's constraint would refuse it: a 503, retried).
    alert = _stored(integration, item, now, level=level, rule=rule, rule_name=rule_name)
    result.stored += 1
    return alert


def _stored(integration, item: Incoming, now, *, level, rule, rule_name: str) -> Alert:
    """A new row for `item`, as received now."""
    return Alert.objects.create(
        integration=integration, business_id=integration.business_id, fingerprint=item.fingerprint,
        status=item.status, title=item.title[:300], severity=item.severity[:40], labels=item.labels,
        annotations=item.annotations, metric=item.metric[:200], value=item.value,
        group_key=group_key(integration, item.labels), level=level, rule=rule, rule_name=rule_name[:100],
        starts_at=item.starts_at, ends_at=item.ends_at or now if item.status == RESOLVED else None,
        received_at=now, last_received_at=now, raw=item.raw,
    )


def _severity_changed(alert: Alert, item: Incoming, now, rules, result: Received) -> Alert:
    """The same alert at another severity (CloudMonitor's triggerLevel going WARN → CRITICAL, or
    no data → ALERT): not a duplicate. It takes the new severity's level; the fault follows."""
    level, rule = level_of(rules, item)
    alert.severity, alert.level, alert.rule, alert.rule_name = item.severity[:40], level, rule, rule.name if rule else ""
    alert.value, alert.annotations, alert.raw = item.value, item.annotations, item.raw
    alert.last_received_at, alert.received_count = now, alert.received_count + 1
    alert.save(update_fields=["severity", "level", "rule", "rule_name", "value", "annotations", "raw",
                              "last_received_at", "received_count"])
    result.stored += 1
    return alert


def _count_duplicate(alert: Alert, now, result: Received) -> None:
    Alert.objects.filter(pk=alert.pk).update(received_count=F("received_count") + 1, last_received_at=now)
    result.duplicates += 1
    if alert.fault_id:
        result.faults.append(alert.fault_id)


def _resolved(integration, item: Incoming, now, rules, result: Received) -> int | None:
    """Resolve the firing row; the fault to look at, if this was its alert."""
    current = Alert.objects.filter(integration=integration, fingerprint=item.fingerprint, status=FIRING).first()
    if current is not None:
        current.status, current.ends_at = RESOLVED, item.ends_at or now
        current.last_received_at, current.received_count = now, current.received_count + 1
        current.save(update_fields=["status", "ends_at", "last_received_at", "received_count"])
        result.resolved += 1
        if current.fault_id:
            result.faults.append(current.fault_id)
        return current.fault_id
    last = (Alert.objects.filter(integration=integration, fingerprint=item.fingerprint, status=RESOLVED)
            .order_by("-received_at", "-id").first())
    if last is not None:
        _count_duplicate(last, now, result)
        return None
    # Resolved before we heard it fire: kept, so that it can be seen; it declares nothing.
    level, rule = level_of(rules, item)
    _stored(integration, item, now, level=level, rule=rule, rule_name=rule.name if rule else "")
    result.stored += 1
    return None


def _open_fault(business_id: int, key: str) -> Fault | None:
    fault_id = (Alert.objects.filter(business_id=business_id, group_key=key, fault__status__in=OPEN)
                .order_by("-fault_id").values_list("fault_id", flat=True).first())
    return Fault.objects.filter(pk=fault_id).first() if fault_id else None


def _why(integration: Integration, alert: Alert) -> str:
    return f"{integration.name}: “{alert.title}” matched “{alert.rule_name}”"


def _into_fault(integration: Integration, key: str, alerts: list[Alert], now) -> Fault | None:
    """Join the new alerts of one group key to its open fault, or declare one (None: all below
    fault level and nothing to join). The most severe alert declares, or raises the level."""
    worst = min(alerts, key=lambda a: (a.level is None, a.level or 0, a.pk))
    fault = _open_fault(integration.business_id, key)
    if fault is None:
        if worst.level is None:
            return None
        fault = _declare(integration, worst, now)
    elif worst.level is not None and worst.level < fault.level:
        fault = incident_services.fault_change_level(
            fault=fault, level=worst.level, reason=_why(integration, worst), source=integration.name
        )
    Alert.objects.filter(pk__in=[a.pk for a in alerts]).update(fault=fault)
    return fault


def _declare(integration: Integration, alert: Alert, now) -> Fault:
    handler, _ = roster_selectors.fault_handler_on_duty(at=now)
    business = integration.business
    found = suspects.alerting_dependencies(business, now)
    reasons = [_why(integration, alert), *(suspects.reason(dep, since, business) for dep, since in found)]
    return incident_services.fault_declare(
        title=(alert.annotations.get("summary") or alert.title)[:200],
        level=alert.level,
        impact=alert.annotations.get("description", ""),
        affected_business=business,
        suspected_cause_businesses=[dep for dep, _ in found],
        detected_at=min(alert.starts_at, now),
        fault_handler=handler,
        source=handler.name if handler is not None else integration.name,
        reason="; ".join(reasons),
    )


def _follow_resolution(integration: Integration, fault_id: int) -> None:
    fault = Fault.objects.filter(pk=fault_id, status__in=OPEN).first()
    if fault is None or Alert.objects.filter(fault=fault, status=FIRING).exists():
        return
    count = Alert.objects.filter(fault=fault).count()
    recover = integration.kind == Integration.Kind.HEARTBEAT or (
        integration.resolve_policy == Integration.ResolvePolicy.RECOVER
    )
    if recover:
        incident_services.fault_mark_recovered(fault=fault, source=integration.name)
    else:
        incident_services.fault_monitoring_cleared(fault=fault, source=integration.name, alerts=count)

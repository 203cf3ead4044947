"""Fault level: an integration's ordered rules, and the defaults each kind of source ships with."""

from incidents.models import Level

from .models import Integration, LevelRule
from .sources import Incoming

Kind = Integration.Kind

# (name, severities, level) — a severity the rules do not name is below fault level, stored
# and shown. Edit them per integration in the admin.
_SEVERITY_DEFAULTS = [
    ("critical → P2", "critical,page,fatal,disaster", Level.P2),
    ("error → P3", "error,major,high", Level.P3),
    ("warning → below fault level", "warning,warn,minor,info,none", None),
]
DEFAULTS = {
    Kind.ALERTMANAGER: _SEVERITY_DEFAULTS,
    Kind.GRAFANA: _SEVERITY_DEFAULTS,
    Kind.GENERIC: [("P1 → P1", "p1", Level.P1), ("P2 → P2", "p2", Level.P2), ("P3 → P3", "p3", Level.P3),
                   ("P4 → P4", "p4", Level.P4), *_SEVERITY_DEFAULTS],
    Kind.CLOUDMONITOR: [
        ("CRITICAL → P2", "CRITICAL", Level.P2),
        ("WARN → P3", "WARN", Level.P3),
        ("INFO → below fault level", "INFO", None),
        ("no data → below fault level", "NODATA", None),
    ],
    Kind.HEARTBEAT: [],
}


def install_defaults(integration: Integration) -> list[LevelRule]:
    """Give a new integration its kind's default rules (once: only when it has none)."""
    if integration.rules.exists():
        return []
    return LevelRule.objects.bulk_create(
        LevelRule(integration=integration, position=(i + 1) * 10, name=name, severity=severity, level=level)
        for i, (name, severity, level) in enumerate(DEFAULTS.get(integration.kind, []))
    )


def matches(rule: LevelRule, alert: Incoming) -> bool:
    if rule.severity:
        wanted = {s.strip().lower() for s in rule.severity.split(",") if s.strip()}
        if alert.severity.lower() not in wanted:
            return False
    for name, value in (rule.labels or {}).items():
        if name not in alert.labels or (value != "*" and alert.labels[name] != str(value)):
            return False
    if rule.metric and alert.metric != rule.metric:
        return False
    if rule.value_above is not None and (alert.value is None or alert.value <= rule.value_above):
        return False
    return True


def level_of(rules: list[LevelRule], alert: Incoming) -> tuple[int | None, LevelRule | None]:
    """The level of the first rule that matches (None: below fault level), and the rule."""
    for rule in rules:
        if matches(rule, alert):
            return rule.level, rule
    return None, None

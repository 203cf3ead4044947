"""What to paste into a monitoring system for an integration: its URL, a test `curl`, and for
Alertmanager the receiver. Shown in the admin and printed by `create_integration`."""

import json
import shlex

from django.conf import settings

from .models import Integration

Kind = Integration.Kind

TEST_ALERT = "WarRoomTest"
_SUMMARY = "A test alert sent by hand to the War Room"


def webhook_url(integration: Integration) -> str:
    """The integration's absolute URL, on the product's public address (SITE_URL)."""
    return settings.SITE_URL + integration.path


def _json_curl(url: str, body: dict) -> str:
    return (
        f"curl -sS -X POST {shlex.quote(url)} \\\n"
        "  -H 'Content-Type: application/json' \\\n"
        f"  -d {shlex.quote(json.dumps(body, ensure_ascii=False))}"
    )


def sample_curl(integration: Integration) -> str:
    """A `curl` that sends one firing alert (or, for a heartbeat, one call) to the integration."""
    url = webhook_url(integration)
    alert = {
        "status": "firing",
        "labels": {"alertname": TEST_ALERT, "severity": "critical"},
        "annotations": {"summary": _SUMMARY},
    }
    if integration.kind == Kind.ALERTMANAGER:
        return _json_curl(url, {"version": "4", "status": "firing", "receiver": "warroom", "alerts": [alert]})
    if integration.kind == Kind.GRAFANA:
        return _json_curl(url, {
            "receiver": "warroom", "status": "firing", "orgId": 1, "version": "1",
            "title": f"[FIRING:1] {TEST_ALERT}", "alerts": [{**alert, "values": {"A": 1}}],
        })
    if integration.kind == Kind.CLOUDMONITOR:
        return (
            f"curl -sS -X POST {shlex.quote(url)} \\\n"
            f"  -d alertState=ALERT -d alertName={TEST_ALERT} -d triggerLevel=CRITICAL \\\n"
            "  -d metricName=CPUUtilization -d curValue=95"
        )
    if integration.kind == Kind.GENERIC:
        return _json_curl(url, {"title": _SUMMARY, "severity": "critical"})
    return f"curl -sS -X POST {shlex.quote(url)}"


def alertmanager_yaml(integration: Integration) -> str:
    """The receiver to add to alertmanager.yml (Alertmanager integrations only, else "")."""
    if integration.kind != Kind.ALERTMANAGER:
        return ""
    name = f"warroom-{integration.business.slug}"
    return (
        f"# alertmanager.yml: route the alerts of {integration.business.name} to this receiver.\n"
        "receivers:\n"
        f"  - name: {name}\n"
        "    webhook_configs:\n"
        f"      - url: '{webhook_url(integration)}'\n"
        "        send_resolved: true\n"
    )

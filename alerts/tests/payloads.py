"""Request bodies in each monitoring system's own documented format (see PROTOCOLS.md).

- Prometheus Alertmanager webhook, version "4": `{version, groupKey, truncatedAlerts, status,
  receiver, groupLabels, commonLabels, commonAnnotations, externalURL, alerts: [...]}`, each
  alert `{status, labels, annotations, startsAt, endsAt, generatorURL, fingerprint}`; a firing
  alert's endsAt is Go's zero time "0001-01-01T00:00:00Z".
- Grafana alerting webhook: the same alert list plus silenceURL, dashboardURL, panelURL and
  `values`, in an envelope with orgId, version "1", title, state and message.
- Alibaba Cloud CloudMonitor: threshold callbacks form-encoded (every field a string,
  `dimensions` and `expression` JSON strings, `timestamp` epoch milliseconds), event
  callbacks JSON.
"""

import hashlib
import json
from datetime import UTC, datetime
from urllib.parse import urlencode

from django.utils import timezone

GO_ZERO_TIME = "0001-01-01T00:00:00Z"


def rfc3339(moment: datetime | None = None) -> str:
    moment = (moment or timezone.now()).astimezone(UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _am_fingerprint(labels: dict) -> str:
    # Alertmanager's fingerprint is a 16-hex-digit hash of the label set.
    return hashlib.sha256(json.dumps(sorted(labels.items())).encode()).hexdigest()[:16]


# --- Prometheus Alertmanager ---------------------------------------------------------------


def am_alert(alertname="HighErrorRate", *, severity="critical", status="firing", summary=None,
             description=None, starts_at=None, ends_at=None, fingerprint=None, **labels) -> dict:
    """One alert of an Alertmanager notification; extra keyword arguments are labels."""
    labels = {"alertname": alertname, **({"severity": severity} if severity else {}),
              "job": "checkout", "instance": "10.0.0.1:9100", **labels}
    annotations = {"summary": summary or f"{alertname} on {labels['instance']}"}
    if description:
        annotations["description"] = description
    if status == "resolved" and ends_at is None:
        ends_at = timezone.now()
    return {
        "status": status,
        "labels": labels,
        "annotations": annotations,
        "startsAt": rfc3339(starts_at),
        "endsAt": rfc3339(ends_at) if ends_at else GO_ZERO_TIME,
        "generatorURL": f"http://prometheus.example:9090/graph?g0.expr={alertname}&g0.tab=1",
        "fingerprint": fingerprint or _am_fingerprint(labels),
    }


def resolved(alert: dict, ends_at=None) -> dict:
    """The same alert as Alertmanager sends it once it has ended."""
    return {**alert, "status": "resolved", "endsAt": rfc3339(ends_at)}


def _common(dicts: list[dict]) -> dict:
    if not dicts:
        return {}
    common = dict(dicts[0])
    for d in dicts[1:]:
        common = {k: v for k, v in common.items() if d.get(k) == v}
    return common


def alertmanager(*alerts, receiver="warroom", group_by=("alertname",),
                 external_url="http://alertmanager.example:9093") -> dict:
    """An Alertmanager webhook notification (version 4) of one group of alerts."""
    alerts = list(alerts)
    common_labels = _common([a["labels"] for a in alerts])
    group_labels = {name: common_labels[name] for name in group_by if name in common_labels}
    group_key = "{}:{" + ", ".join(f'{k}="{v}"' for k, v in group_labels.items()) + "}"
    return {
        "version": "4",
        "groupKey": group_key,
        "truncatedAlerts": 0,
        "status": "firing" if any(a["status"] == "firing" for a in alerts) else "resolved",
        "receiver": receiver,
        "groupLabels": group_labels,
        "commonLabels": common_labels,
        "commonAnnotations": _common([a["annotations"] for a in alerts]),
        "externalURL": external_url,
        "alerts": alerts,
    }


# --- Grafana alerting ------------------------------------------------------------------------


def grafana_alert(alertname="CheckoutLatencyHigh", *, severity="critical", status="firing", value=1.85,
                  summary=None, starts_at=None, ends_at=None, **labels) -> dict:
    alert = am_alert(alertname, severity=severity, status=status, summary=summary, starts_at=starts_at,
                     ends_at=ends_at, grafana_folder="Checkout", **labels)
    alert["generatorURL"] = "https://grafana.example/alerting/grafana/cdk2ab3/view?orgId=1"
    alert.update({
        "silenceURL": "https://grafana.example/alerting/silence/new?alertmanager=grafana&matcher=alertname%3D"
                      + alertname,
        "dashboardURL": "https://grafana.example/d/checkout-slo?orgId=1",
        "panelURL": "https://grafana.example/d/checkout-slo?orgId=1&viewPanel=4",
        "values": {"A": value, "C": 1},
        "valueString": f"[ var='A' labels={{}} value={value} ], [ var='C' labels={{}} value=1 ]",
    })
    return alert


def grafana(*alerts, receiver="warroom") -> dict:
    alerts = list(alerts)
    body = alertmanager(*alerts, receiver=receiver, external_url="https://grafana.example/")
    firing = [a for a in alerts if a["status"] == "firing"]
    body.update({
        "orgId": 1,
        "version": "1",
        "title": f"[{'FIRING' if firing else 'RESOLVED'}:{len(alerts)}] {alerts[0]['labels']['alertname']}",
        "state": "alerting" if firing else "ok",
        "message": f"**Firing**\n\nValue: A={alerts[0]['values']['A']}",
    })
    return body


# --- Alibaba Cloud CloudMonitor --------------------------------------------------------------


def cloudmonitor_threshold(*, state="ALERT", level="CRITICAL", alert_name="ECS CPU utilisation high",
                           instance_id="i-bp1f3k2checkout01", value="97.5", timestamp: datetime | None = None,
                           rule_id="putNewAlarm_user_7e78d765-0e3e-4671-ba6d-5ce5b9a2a1f0") -> dict:
    """The fields of a threshold alert callback (form-encoded on the wire)."""
    moment = timestamp or timezone.now()
    return {
        "userId": "1234567890123456",
        "alertName": alert_name,
        "timestamp": str(int(moment.timestamp() * 1000)),
        "alertState": state,
        "dimensions": json.dumps([{"instanceId": instance_id, "userId": "1234567890123456"}]),
        "expression": json.dumps("$Average>=90"),
        "curValue": value,
        "metricName": "CPUUtilization",
        "metricProject": "acs_ecs_dashboard",
        "triggerLevel": level,
        "lastTime": "5 minutes",
        "ruleId": rule_id,
        "regionId": "cn-hangzhou",
        "instanceName": "checkout-web-01",
        "namespace": "acs_ecs_dashboard",
        "productGroupName": "Checkout",
    }


def form(fields: dict) -> str:
    return urlencode(fields)


def cloudmonitor_event(*, name="Instance:SystemFailure.Reboot:Executing", level="CRITICAL", status="Executing",
                       resource="acs:ecs:cn-hangzhou:1234567890123456:instance/i-bp1f3k2checkout01") -> dict:
    """An event subscription callback (JSON)."""
    return {
        "product": "ECS",
        "eventType": "StatusNotification",
        "eventName": name,
        "level": level,
        "status": status,
        "time": int(timezone.now().timestamp() * 1000),
        "instanceName": "checkout-web-01",
        "resourceId": resource,
        "regionId": "cn-hangzhou",
        "content": {"eventId": "e-t4navn7w2wn2p", "executeStartTime": rfc3339(), "reason": "SystemFailure"},
    }


# --- Generic JSON ----------------------------------------------------------------------------


def generic(title="Checkout 5xx above 5 %", *, severity="p2", **fields) -> dict:
    return {
        "title": title,
        "severity": severity,
        "labels": {"service": "checkout", "env": "prod"},
        "description": "One in twenty checkouts fails.",
        "url": "https://monitoring.example/checkout",
        "metric": "http_5xx_ratio",
        "value": 0.052,
        **fields,
    }

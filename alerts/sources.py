"""What each monitoring source sends, read into one shape (`Incoming`), or refused with a reason.

Pure functions of the request body: nothing here touches the database. Payload facts are in
PROTOCOLS.md: Alertmanager's webhook (version 4), Grafana's (the same alert list), and
Alibaba Cloud CloudMonitor's threshold (form-encoded) and event (JSON) callbacks.
"""

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from datetime import timezone as dt_timezone
from urllib.parse import parse_qs

from django.utils import timezone
from django.utils.dateparse import parse_datetime

FIRING, RESOLVED = "firing", "resolved"
# Alertmanager's "zero" time for an alert that has not ended.
_NO_END_BEFORE = datetime(1970, 1, 2, tzinfo=dt_timezone.utc)


class Malformed(ValueError):
    """The payload cannot be read; the message says what is wrong (answered 400)."""


@dataclass
class Incoming:
    fingerprint: str
    status: str
    title: str
    starts_at: datetime
    ends_at: datetime | None = None
    severity: str = ""
    labels: dict = field(default_factory=dict)
    annotations: dict = field(default_factory=dict)
    metric: str = ""
    value: float | None = None
    raw: dict = field(default_factory=dict)


def parse(kind: str, body: bytes, content_type: str) -> list[Incoming]:
    """The alerts in one request of `kind`. Raises Malformed."""
    if kind == "aliyun-cloudmonitor":
        return _cloudmonitor(body, content_type)
    data = _json(body)
    if kind in ("alertmanager", "grafana"):
        return _alertmanager(data)
    if kind == "generic":
        return _generic(data)
    raise Malformed(f"Unknown integration kind {kind!r}.")


def fingerprint_of(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:32]


def _json(body: bytes):
    try:
        return json.loads(body or b"null", parse_constant=_no_constant)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise Malformed(f"The body is not JSON: {error}.") from None


def _no_constant(name):
    raise Malformed(f"{name} is not a number JSON allows.")


def _when(value, what: str, *, required: bool = False) -> datetime | None:
    if value in (None, ""):
        if required:
            raise Malformed(f"{what} is missing.")
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = value / 1000 if value > 10**11 else value  # epoch milliseconds or seconds
        try:
            return datetime.fromtimestamp(seconds, tz=dt_timezone.utc)
        except (OverflowError, OSError, ValueError):
            raise Malformed(f"{what} {value!r} is not a time.") from None
    if isinstance(value, str):
        if value.strip().isdigit():
            return _when(int(value.strip()), what)
        try:
            parsed = parse_datetime(value)
        except ValueError:
            parsed = None
        if parsed is not None:
            return parsed if timezone.is_aware(parsed) else timezone.make_aware(parsed, dt_timezone.utc)
    raise Malformed(f"{what} {value!r} is not a time (RFC 3339 or epoch milliseconds).")


def _strings(value, what: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise Malformed(f"{what} must be an object of strings.")
    return {str(k)[:200]: str(v)[:2000] for k, v in value.items()}


def _status(value, what: str) -> str:
    status = str(value or FIRING).lower()
    if status not in (FIRING, RESOLVED):
        raise Malformed(f"{what} must be \"firing\" or \"resolved\", not {value!r}.")
    return status


def _alertmanager(data) -> list[Incoming]:
    if not isinstance(data, dict) or not isinstance(data.get("alerts"), list):
        raise Malformed("Expected Alertmanager's webhook body: an object with an \"alerts\" list.")
    envelope = {k: v for k, v in data.items() if k != "alerts"}
    found = []
    for i, a in enumerate(data["alerts"]):
        where = f"alerts[{i}]"
        if not isinstance(a, dict):
            raise Malformed(f"{where} must be an object.")
        labels = _strings(a.get("labels"), f"{where}.labels")
        if not labels:
            raise Malformed(f"{where}.labels is missing or empty.")
        annotations = _strings(a.get("annotations"), f"{where}.annotations")
        status = _status(a.get("status"), f"{where}.status")
        starts = _when(a.get("startsAt"), f"{where}.startsAt") or timezone.now()
        ends = _when(a.get("endsAt"), f"{where}.endsAt")
        value = _first_value(a.get("values"))
        found.append(Incoming(
            fingerprint=str(a.get("fingerprint") or fingerprint_of(sorted(labels.items())))[:128],
            status=status,
            title=labels.get("alertname") or annotations.get("summary") or "alert",
            starts_at=starts,
            ends_at=ends if ends is not None and ends > _NO_END_BEFORE else None,
            severity=labels.get("severity", ""),
            labels=labels,
            annotations=annotations,
            metric=labels.get("__name__", ""),
            value=value,
            raw={**envelope, "alert": a},
        ))
    return found


def _first_value(values) -> float | None:
    # Grafana sends the query results as {"A": 12.5, ...}.
    if isinstance(values, dict):
        for v in values.values():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                return float(v)
    return None


def _number(value, what: str) -> float | None:
    if value in (None, ""):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise Malformed(f"{what} {value!r} is not a number.") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise Malformed(f"{what} {value!r} is not a finite number.")
    return number


def _generic(data) -> list[Incoming]:
    listed = isinstance(data, dict) and "alerts" in data
    items = data.get("alerts") if listed else [data]
    if not isinstance(items, list) or not items:
        raise Malformed("Expected an alert object, or {\"alerts\": [alert, ...]}.")
    found = []
    for i, a in enumerate(items):
        where = f"alerts[{i}]" if len(items) > 1 or listed else "the alert"
        if not isinstance(a, dict):
            raise Malformed(f"{where} must be an object.")
        title = a.get("title")
        if not isinstance(title, str) or not title.strip():
            raise Malformed(f"{where}: \"title\" is required.")
        labels = _strings(a.get("labels"), f"{where}.labels")
        annotations = _strings(a.get("annotations"), f"{where}.annotations")
        if a.get("description"):
            annotations.setdefault("description", str(a["description"])[:2000])
        if a.get("url"):
            annotations.setdefault("url", str(a["url"])[:2000])
        found.append(Incoming(
            fingerprint=str(a.get("fingerprint") or fingerprint_of(title.strip(), sorted(labels.items())))[:128],
            status=_status(a.get("status"), f"{where}.status"),
            title=title.strip()[:300],
            starts_at=_when(a.get("starts_at"), f"{where}.starts_at") or timezone.now(),
            ends_at=_when(a.get("ends_at"), f"{where}.ends_at"),
            severity=str(a.get("severity") or labels.get("severity", ""))[:40],
            labels=labels,
            annotations=annotations,
            metric=str(a.get("metric") or "")[:200],
            value=_number(a.get("value"), f"{where}.value"),
            raw=a,
        ))
    return found


_CLOUDMONITOR_STATES = {"ALERT": FIRING, "OK": RESOLVED, "INSUFFICIENT_DATA": FIRING}


def _cloudmonitor(body: bytes, content_type: str) -> list[Incoming]:
    if "json" in content_type:
        return [_cloudmonitor_event(_json(body))]
    try:
        form = {k: v[-1] for k, v in parse_qs(body.decode(), keep_blank_values=True, strict_parsing=False).items()}
    except UnicodeDecodeError:
        raise Malformed("The form is not UTF-8.") from None
    state = form.get("alertState", "")
    if state not in _CLOUDMONITOR_STATES:
        raise Malformed(f"alertState must be ALERT, OK or INSUFFICIENT_DATA, not {state!r}.")
    if not form.get("alertName") and not form.get("ruleId"):
        raise Malformed("alertName is missing.")
    dimensions = _json_field(form.get("dimensions"), "dimensions")
    when = _when(form.get("timestamp"), "timestamp") or timezone.now()
    labels = {k: str(form[k])[:200] for k in ("metricProject", "metricName", "regionId", "instanceName",
                                                "namespace", "productGroupName", "ruleId", "userId") if form.get(k)}
    if isinstance(dimensions, list):
        for d in dimensions:
            if isinstance(d, dict):
                labels.update({str(k)[:200]: str(v)[:200] for k, v in d.items()})
    # No data is not an outage of the business: it gets a severity of its own (below fault level by default).
    severity = "NODATA" if state == "INSUFFICIENT_DATA" else form.get("triggerLevel", "")
    return [Incoming(
        fingerprint=fingerprint_of(form.get("ruleId") or form.get("alertName"), form.get("metricProject"),
                                   form.get("metricName"), dimensions),
        status=_CLOUDMONITOR_STATES[state],
        title=(form.get("alertName") or form.get("ruleId"))[:300],
        starts_at=when,
        ends_at=when if state == "OK" else None,
        severity=severity,
        labels=labels,
        annotations={k: form[k][:2000] for k in ("expression", "curValue", "lastTime") if form.get(k)},
        metric=form.get("metricName", "")[:200],
        value=_number(form.get("curValue"), "curValue"),
        raw=form,
    )]


def _json_field(value, what: str):
    if not value:
        return None
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        raise Malformed(f"{what} is not JSON: {value[:100]!r}.") from None


def _cloudmonitor_event(data) -> Incoming:
    if not isinstance(data, dict) or not (data.get("eventName") or data.get("name")):
        raise Malformed("Expected a CloudMonitor event: an object with eventName, level, status and time.")
    name = str(data.get("eventName") or data.get("name"))
    labels = {k: str(data[k])[:200] for k in ("product", "eventType", "resourceId", "regionId", "instanceName")
              if data.get(k)}
    status = str(data.get("status") or "").lower()
    content = data.get("content")
    return Incoming(
        fingerprint=fingerprint_of(data.get("product"), data.get("eventType"), name, data.get("resourceId")),
        status=RESOLVED if status in ("resolved", "ok", "normal", "recovered") else FIRING,
        title=name[:300],
        starts_at=_when(data.get("time"), "time") or timezone.now(),
        severity=str(data.get("level") or "")[:40],
        labels=labels,
        annotations={"content": (json.dumps(content) if not isinstance(content, str) else content)[:2000]}
        if content else {},
        raw=data,
    )

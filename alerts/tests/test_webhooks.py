"""Each monitoring source's webhook, in the vendor's own format, through the real endpoints:
what is stored, the fault it declares, and what the sender is answered."""

import json
from datetime import timedelta

import pytest

from alerts.models import Alert, Integration
from incidents.models import Fault, Level, RoleAssignment

from . import payloads as p
from .support import events

pytestmark = pytest.mark.django_db

Kind = Integration.Kind


# --- Prometheus Alertmanager ---------------------------------------------------------------


@pytest.mark.parametrize(("severity", "level", "rule"), [
    ("critical", Level.P2, "critical → P2"),
    ("error", Level.P3, "error → P3"),
])
def test_a_firing_alertmanager_alert_declares_one_fault_at_its_rules_level(
    make_integration, send, severity, level, rule
):
    integration = make_integration(Kind.ALERTMANAGER, name="Prometheus prod")

    response = send(integration, p.alertmanager(p.am_alert("CheckoutErrors", severity=severity,
                                                           summary="Checkout fails for 12 % of orders")))

    assert response.status_code == 200
    fault = Fault.objects.get()
    assert response.json() == {"stored": 1, "duplicates": 0, "resolved": 0, "faults": [fault.pk]}
    alert = Alert.objects.get()
    assert (alert.status, alert.level, alert.rule_name, alert.fault, alert.received_count) == (
        "firing", level, rule, fault, 1)
    assert (fault.level, fault.title, fault.affected_business) == (
        level, "Checkout fails for 12 % of orders", integration.business)
    (declared,) = events(fault, "fault.declared")
    assert declared.data["reason"] == f"Prometheus prod: “CheckoutErrors” matched “{rule}”"


def test_a_warning_is_stored_below_fault_level_and_declares_nothing(make_integration, send):
    integration = make_integration()

    response = send(integration, p.alertmanager(p.am_alert("DiskFilling", severity="warning")))

    assert response.status_code == 200
    assert response.json() == {"stored": 1, "duplicates": 0, "resolved": 0, "faults": []}
    alert = Alert.objects.get()
    assert (alert.level, alert.fault, alert.rule_name) == (None, None, "warning → below fault level")
    assert not Fault.objects.exists()


def test_the_fault_handler_on_duty_declares_the_fault_when_someone_is_on_call(
    make_integration, send, fault_handler_on_duty
):
    integration = make_integration(name="Prometheus prod")

    send(integration, p.alertmanager(p.am_alert()))

    fault = Fault.objects.get()
    (declared,) = events(fault, "fault.declared")
    assert declared.actor_label == fault_handler_on_duty.name == "Wang Fang"
    assert RoleAssignment.objects.filter(
        fault=fault, role=RoleAssignment.Role.FAULT_HANDLER, person=fault_handler_on_duty).exists()


def test_the_integration_declares_the_fault_when_nobody_is_on_call_for_faults(make_integration, send):
    integration = make_integration(name="Prometheus prod")

    send(integration, p.alertmanager(p.am_alert()))

    (declared,) = events(Fault.objects.get(), "fault.declared")
    assert declared.actor_label == "Prometheus prod"


def test_the_fault_impact_is_the_alerts_description(make_integration, send):
    integration = make_integration()

    send(integration, p.alertmanager(p.am_alert(description="Orders above 200 € fail at the PSP.")))

    assert Fault.objects.get().impact == "Orders above 200 € fail at the PSP."


# --- Grafana ---------------------------------------------------------------------------------


def test_a_grafana_notification_declares_a_fault_and_keeps_the_query_value(make_integration, send):
    integration = make_integration(Kind.GRAFANA, name="Grafana")

    response = send(integration, p.grafana(p.grafana_alert("CheckoutLatencyHigh", value=1.85)))

    assert response.status_code == 200
    fault = Fault.objects.get()
    assert response.json()["faults"] == [fault.pk]
    alert = Alert.objects.get()
    assert (alert.level, alert.value, alert.fault) == (Level.P2, 1.85, fault)
    assert alert.raw["alert"]["dashboardURL"] == "https://grafana.example/d/checkout-slo?orgId=1"
    assert alert.raw["orgId"] == 1
    assert events(fault, "fault.declared")[0].data["reason"] == (
        "Grafana: “CheckoutLatencyHigh” matched “critical → P2”")


def test_a_resolved_grafana_notification_resolves_the_alert_and_clears_the_fault(make_integration, send):
    integration = make_integration(Kind.GRAFANA, name="Grafana")
    firing = p.grafana_alert()
    send(integration, p.grafana(firing))

    response = send(integration, p.grafana(p.resolved(firing)))

    assert response.json()["resolved"] == 1
    assert Alert.objects.get().status == "resolved"
    (cleared,) = events(Fault.objects.get(), "monitoring.cleared")
    assert (cleared.data["alerts"], cleared.actor_label) == (1, "Grafana")


# --- Alibaba Cloud CloudMonitor ---------------------------------------------------------------


def send_form(send, integration, fields):
    return send(integration, body=p.form(fields), content_type="application/x-www-form-urlencoded")


def test_a_cloudmonitor_critical_threshold_alert_declares_a_p2_fault(make_integration, send):
    integration = make_integration(Kind.CLOUDMONITOR, name="CloudMonitor")

    response = send_form(send, integration, p.cloudmonitor_threshold(level="CRITICAL", value="97.5"))

    assert response.status_code == 200
    fault = Fault.objects.get()
    assert response.json() == {"stored": 1, "duplicates": 0, "resolved": 0, "faults": [fault.pk]}
    alert = Alert.objects.get()
    assert (alert.level, alert.title, alert.metric, alert.value) == (
        Level.P2, "ECS CPU utilisation high", "CPUUtilization", 97.5)
    assert alert.labels["instanceId"] == "i-bp1f3k2checkout01"  # from the dimensions JSON string
    assert alert.labels["regionId"] == "cn-hangzhou"
    assert fault.level == Level.P2


def test_a_cloudmonitor_warn_threshold_alert_declares_a_p3_fault(make_integration, send):
    integration = make_integration(Kind.CLOUDMONITOR)

    send_form(send, integration, p.cloudmonitor_threshold(level="WARN"))

    assert Fault.objects.get().level == Level.P3


def test_three_retries_of_one_cloudmonitor_callback_count_as_one_alert(make_integration, send):
    integration = make_integration(Kind.CLOUDMONITOR)
    callback = p.cloudmonitor_threshold()

    answers = [send_form(send, integration, callback).json() for _ in range(3)]

    fault = Fault.objects.get()
    assert [(a["stored"], a["duplicates"], a["faults"]) for a in answers] == [
        (1, 0, [fault.pk]), (0, 1, [fault.pk]), (0, 1, [fault.pk])]
    alert = Alert.objects.get()
    assert alert.received_count == 3
    assert len(events(fault, "fault.declared")) == 1


def test_a_cloudmonitor_ok_callback_resolves_the_alert(make_integration, send, clock):
    integration = make_integration(Kind.CLOUDMONITOR, name="CloudMonitor")
    send_form(send, integration, p.cloudmonitor_threshold(state="ALERT"))
    ended = clock.advance(timedelta(minutes=7))

    response = send_form(send, integration, p.cloudmonitor_threshold(state="OK", value="41.0", timestamp=ended))

    assert response.json()["resolved"] == 1
    alert = Alert.objects.get()
    assert (alert.status, alert.ends_at, alert.received_count) == ("resolved", ended, 2)
    (cleared,) = events(Fault.objects.get(), "monitoring.cleared")
    assert (cleared.data["alerts"], cleared.actor_label) == (1, "CloudMonitor")


def test_cloudmonitor_insufficient_data_is_below_fault_level(make_integration, send):
    integration = make_integration(Kind.CLOUDMONITOR)

    response = send_form(send, integration, p.cloudmonitor_threshold(state="INSUFFICIENT_DATA", value=""))

    assert response.status_code == 200
    alert = Alert.objects.get()
    assert (alert.status, alert.severity, alert.level, alert.fault) == ("firing", "NODATA", None, None)
    assert not Fault.objects.exists()


def test_a_cloudmonitor_event_callback_declares_a_fault_at_its_level(make_integration, send):
    integration = make_integration(Kind.CLOUDMONITOR, name="CloudMonitor events")

    response = send(integration, p.cloudmonitor_event(level="CRITICAL"))

    assert response.status_code == 200
    fault = Fault.objects.get()
    alert = Alert.objects.get()
    assert (alert.title, alert.level, alert.fault) == ("Instance:SystemFailure.Reboot:Executing", Level.P2, fault)
    assert alert.labels["product"] == "ECS"
    assert "SystemFailure" in alert.annotations["content"]
    assert events(fault, "fault.declared")[0].data["reason"] == (
        "CloudMonitor events: “Instance:SystemFailure.Reboot:Executing” matched “CRITICAL → P2”")


def test_a_cloudmonitor_threshold_callback_without_an_alert_state_is_refused(make_integration, send):
    integration = make_integration(Kind.CLOUDMONITOR)
    fields = p.cloudmonitor_threshold()
    del fields["alertState"]

    response = send_form(send, integration, fields)

    assert response.status_code == 400
    assert "alertState" in response.json()["detail"]
    assert not Alert.objects.exists()


# --- Generic JSON ----------------------------------------------------------------------------


def test_a_generic_alert_object_declares_a_fault_at_its_severity(make_integration, send):
    integration = make_integration(Kind.GENERIC, name="Uptime checks")

    response = send(integration, p.generic("Checkout 5xx above 5 %", severity="P1"))

    assert response.status_code == 200
    fault = Fault.objects.get()
    assert response.json() == {"stored": 1, "duplicates": 0, "resolved": 0, "faults": [fault.pk]}
    alert = Alert.objects.get()
    assert (alert.title, alert.level, alert.value, alert.metric) == (
        "Checkout 5xx above 5 %", Level.P1, 0.052, "http_5xx_ratio")
    assert (fault.level, fault.impact) == (Level.P1, "One in twenty checkouts fails.")


def test_a_generic_alert_list_stores_each_alert_in_one_fault(make_integration, send):
    integration = make_integration(Kind.GENERIC)

    response = send(integration, {"alerts": [p.generic("Checkout 5xx"), p.generic("Checkout slow", severity="p3")]})

    fault = Fault.objects.get()
    assert response.json() == {"stored": 2, "duplicates": 0, "resolved": 0, "faults": [fault.pk]}
    assert sorted(Alert.objects.values_list("title", "level", "fault")) == [
        ("Checkout 5xx", Level.P2, fault.pk), ("Checkout slow", Level.P3, fault.pk)]


def test_a_generic_alert_without_a_title_is_refused_naming_the_field(make_integration, send):
    integration = make_integration(Kind.GENERIC)
    alert = p.generic()
    del alert["title"]

    response = send(integration, alert)

    assert response.status_code == 400
    assert response.json()["detail"] == "the alert: \"title\" is required."
    assert not Alert.objects.exists()


def test_the_second_untitled_alert_of_a_list_is_named_in_the_refusal(make_integration, send):
    integration = make_integration(Kind.GENERIC)

    response = send(integration, {"alerts": [p.generic(), {"severity": "p2"}]})

    assert response.status_code == 400
    assert response.json()["detail"] == "alerts[1]: \"title\" is required."
    assert not Alert.objects.exists()  # the first one is not stored either


def test_the_openapi_schema_documents_the_generic_endpoint(client):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")

    assert response.status_code == 200
    schema = json.loads(response.content)
    operation = schema["paths"]["/api/v1/integrations/{token}/generic/"]["post"]
    assert operation["operationId"] == "integration_generic"
    assert set(operation["responses"]) >= {"200", "400", "404", "413", "429", "503"}


def test_a_cloudmonitor_rule_escalating_from_warn_to_critical_raises_the_fault(make_integration, send, clock):
    integration = make_integration(Kind.CLOUDMONITOR, name="CloudMonitor")
    send_form(send, integration, p.cloudmonitor_threshold(level="WARN", value="85.0"))
    clock.advance(timedelta(minutes=5))

    response = send_form(send, integration, p.cloudmonitor_threshold(level="CRITICAL", value="97.5"))

    fault = Fault.objects.get()
    assert response.json()["faults"] == [fault.pk]
    assert fault.level == Level.P2
    (changed,) = events(fault, "fault.level_changed")
    assert changed.data["reason"] == "CloudMonitor: “ECS CPU utilisation high” matched “CRITICAL → P2”"
    alert = Alert.objects.get()
    assert (alert.severity, alert.level, alert.value, alert.received_count) == ("CRITICAL", Level.P2, 97.5, 2)


def test_a_cloudmonitor_rule_alerting_after_insufficient_data_declares_a_fault(make_integration, send, clock):
    integration = make_integration(Kind.CLOUDMONITOR)
    send_form(send, integration, p.cloudmonitor_threshold(state="INSUFFICIENT_DATA", value=""))
    clock.advance(timedelta(minutes=5))

    response = send_form(send, integration, p.cloudmonitor_threshold(state="ALERT", level="CRITICAL"))

    fault = Fault.objects.get()
    assert response.json()["faults"] == [fault.pk]
    assert fault.level == Level.P2
    alert = Alert.objects.get()
    assert (alert.status, alert.severity, alert.level, alert.fault) == ("firing", "CRITICAL", Level.P2, fault)


def test_the_fault_is_detected_when_its_first_alert_started(make_integration, send, clock):
    integration = make_integration()
    started = clock.now() - timedelta(minutes=10)

    send(integration, p.alertmanager(p.am_alert(starts_at=started)))

    fault = Fault.objects.get()
    assert (fault.detected_at, fault.declared_at) == (started, clock.now())


def test_a_generic_alert_is_resolved_by_its_fingerprint(make_integration, send):
    integration = make_integration(Kind.GENERIC, resolve_policy=Integration.ResolvePolicy.RECOVER)
    send(integration, p.generic(fingerprint="checkout-5xx"))

    response = send(integration, {"title": "Checkout 5xx above 5 %", "fingerprint": "checkout-5xx",
                                  "status": "resolved"})

    assert response.json()["resolved"] == 1
    assert Alert.objects.get().status == "resolved"
    assert Fault.objects.get().status == Fault.Status.RECOVERED


def test_a_generic_alert_sent_again_at_a_higher_severity_raises_its_fault(make_integration, send):
    integration = make_integration(Kind.GENERIC)
    send(integration, p.generic(fingerprint="checkout-5xx", severity="p3"))

    response = send(integration, p.generic(fingerprint="checkout-5xx", severity="p1"))

    assert response.json()["stored"] == 1
    assert Alert.objects.get().level == Level.P1
    assert Fault.objects.get().level == Level.P1


def test_a_generic_alert_sent_again_at_a_lower_severity_leaves_the_fault_as_it_is(make_integration, send):
    integration = make_integration(Kind.GENERIC)
    send(integration, p.generic(fingerprint="checkout-5xx", severity="p1"))

    send(integration, p.generic(fingerprint="checkout-5xx", severity="warning"))

    alert, fault = Alert.objects.get(), Fault.objects.get()
    assert (alert.level, alert.fault) == (None, fault)
    assert fault.level == Level.P1
    assert events(fault, "fault.level_changed") == []

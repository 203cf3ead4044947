"""Alerts joining faults: duplicates counted once, levels raised, groups kept apart, resolution
followed, and a storm that declares one fault and pages once."""

from datetime import timedelta

import pytest
from django.utils import timezone

from alerts.models import Alert, Integration
from incidents.models import Fault, Level
from notifications.models import Delivery
from roster.models import CandidateKind
from roster.tests import factories as roster_factories

from . import payloads as p
from .support import events

pytestmark = pytest.mark.django_db

Kind = Integration.Kind


# --- duplicates ------------------------------------------------------------------------------


def test_a_notification_sent_twice_stores_its_alert_once_and_counts_the_duplicate(make_integration, send):
    integration = make_integration()
    notification = p.alertmanager(p.am_alert())
    send(integration, notification)

    response = send(integration, notification)

    fault = Fault.objects.get()
    assert response.json() == {"stored": 0, "duplicates": 1, "resolved": 0, "faults": [fault.pk]}
    alert = Alert.objects.get()
    assert (alert.received_count, alert.fault) == (2, fault)
    assert len(events(fault, "fault.declared")) == 1


def test_a_resent_group_with_one_new_alert_stores_only_the_new_one(make_integration, send):
    integration = make_integration()
    a, b = p.am_alert(instance="10.0.0.1:9100"), p.am_alert(instance="10.0.0.2:9100")
    send(integration, p.alertmanager(a))

    response = send(integration, p.alertmanager(a, b))

    assert response.json()["stored"] == 1
    assert response.json()["duplicates"] == 1
    assert sorted(Alert.objects.values_list("labels__instance", "received_count")) == [
        ("10.0.0.1:9100", 2), ("10.0.0.2:9100", 1)]


def test_an_alertmanager_ha_pair_delivering_the_same_alert_stores_one_row(make_integration, send):
    integration = make_integration()
    alert = p.am_alert()

    first = send(integration, p.alertmanager(alert, external_url="http://alertmanager-0.example:9093"))
    second = send(integration, p.alertmanager(alert, external_url="http://alertmanager-1.example:9093"))

    assert (first.json()["stored"], second.json()["stored"], second.json()["duplicates"]) == (1, 0, 1)
    assert Alert.objects.get().received_count == 2
    assert Fault.objects.count() == 1


def test_a_resolution_sent_twice_is_a_duplicate_the_second_time(make_integration, send):
    integration = make_integration(name="Prometheus prod")
    alert = p.am_alert()
    send(integration, p.alertmanager(alert))
    send(integration, p.alertmanager(p.resolved(alert)))

    response = send(integration, p.alertmanager(p.resolved(alert)))

    assert response.json() == {"stored": 0, "duplicates": 1, "resolved": 0, "faults": [Fault.objects.get().pk]}
    row = Alert.objects.get()
    assert (row.status, row.received_count) == ("resolved", 3)
    assert len(events(Fault.objects.get(), "monitoring.cleared")) == 1


def test_an_alert_firing_again_after_its_resolution_is_a_new_row(make_integration, send):
    integration = make_integration(resolve_policy=Integration.ResolvePolicy.RECOVER)
    alert = p.am_alert()
    send(integration, p.alertmanager(alert))
    send(integration, p.alertmanager(p.resolved(alert)))

    # Firing again, the alert has a new start (Prometheus starts a new activation).
    response = send(integration, p.alertmanager(p.am_alert(starts_at=timezone.now() + timedelta(minutes=1))))

    assert response.json()["stored"] == 1
    assert sorted(Alert.objects.values_list("status", flat=True)) == ["firing", "resolved"]
    # The first fault is recovered: the alert firing again declares a new one.
    assert sorted(Fault.objects.values_list("status", flat=True)) == ["declared", "recovered"]


def test_a_resolution_of_an_alert_never_heard_firing_is_kept_and_declares_nothing(make_integration, send):
    integration = make_integration()

    response = send(integration, p.alertmanager(p.resolved(p.am_alert())))

    assert response.json() == {"stored": 1, "duplicates": 0, "resolved": 0, "faults": []}
    assert Alert.objects.get().status == "resolved"
    assert not Fault.objects.exists()


# --- levels ----------------------------------------------------------------------------------


def test_a_more_severe_alert_joining_raises_the_faults_level_and_says_why(make_integration, send):
    integration = make_integration(name="Prometheus prod")
    send(integration, p.alertmanager(p.am_alert("CheckoutSlow", severity="error")))

    response = send(integration, p.alertmanager(p.am_alert("CheckoutDown", severity="critical")))

    fault = Fault.objects.get()
    assert response.json()["faults"] == [fault.pk]
    assert fault.level == Level.P2
    (changed,) = events(fault, "fault.level_changed")
    assert changed.data == {"from": Level.P3, "to": Level.P2, "raised": True,
                            "reason": "Prometheus prod: “CheckoutDown” matched “critical → P2”"}
    assert changed.actor_label == "Prometheus prod"
    assert Alert.objects.filter(fault=fault).count() == 2


def test_a_less_severe_alert_joins_without_changing_the_level(make_integration, send):
    integration = make_integration()
    send(integration, p.alertmanager(p.am_alert("CheckoutDown", severity="critical")))

    send(integration, p.alertmanager(p.am_alert("CheckoutSlow", severity="error")))

    fault = Fault.objects.get()
    assert fault.level == Level.P2
    assert events(fault, "fault.level_changed") == []
    assert Alert.objects.get(title="CheckoutSlow").fault == fault


def test_a_warning_joins_an_open_fault_without_changing_it(make_integration, send):
    integration = make_integration()
    send(integration, p.alertmanager(p.am_alert("CheckoutDown", severity="error")))

    response = send(integration, p.alertmanager(p.am_alert("DiskFilling", severity="warning")))

    fault = Fault.objects.get()
    assert response.json()["faults"] == [fault.pk]
    warning = Alert.objects.get(title="DiskFilling")
    assert (warning.level, warning.fault) == (None, fault)
    assert fault.level == Level.P3
    assert events(fault, "fault.level_changed") == []


def test_the_most_severe_alert_of_one_notification_declares_and_the_others_join(make_integration, send):
    integration = make_integration()

    send(integration, p.alertmanager(p.am_alert("Slow", severity="error"), p.am_alert("Down", severity="critical")))

    fault = Fault.objects.get()
    assert fault.level == Level.P2
    assert "“Down” matched “critical → P2”" in events(fault, "fault.declared")[0].data["reason"]
    assert events(fault, "fault.level_changed") == []
    assert Alert.objects.filter(fault=fault).count() == 2


def test_an_integrations_own_rules_decide_the_level(make_integration, send):
    integration = make_integration()
    integration.rules.all().delete()
    integration.rules.create(position=1, name="prod 5xx above 10 %", labels={"env": "prod"}, level=Level.P1)
    integration.rules.create(position=2, name="anything else", level=None)

    send(integration, p.alertmanager(p.am_alert("Errors", severity="warning", env="prod")))
    send(integration, p.alertmanager(p.am_alert("Errors", severity="critical", env="staging")))

    assert sorted(Alert.objects.values_list("labels__env", "level", "rule_name")) == [
        ("prod", Level.P1, "prod 5xx above 10 %"), ("staging", None, "anything else")]
    assert Fault.objects.get().level == Level.P1


# --- grouping --------------------------------------------------------------------------------


def test_alerts_with_different_group_values_declare_separate_faults(make_integration, send):
    integration = make_integration(group_by=["alertname", "cluster"])

    send(integration, p.alertmanager(p.am_alert("CheckoutDown", cluster="hz-a")))
    send(integration, p.alertmanager(p.am_alert("CheckoutDown", cluster="sh-b")))

    assert Fault.objects.count() == 2
    assert sorted(Alert.objects.values_list("group_key", flat=True)) == [
        "alertname=CheckoutDown|cluster=hz-a", "alertname=CheckoutDown|cluster=sh-b"]
    assert Alert.objects.values("fault").distinct().count() == 2


def test_alerts_with_the_same_group_values_join_one_fault(make_integration, send):
    integration = make_integration(group_by=["alertname", "cluster"])

    send(integration, p.alertmanager(p.am_alert("CheckoutDown", cluster="hz-a", instance="10.0.0.1:9100")))
    send(integration, p.alertmanager(p.am_alert("CheckoutDown", cluster="hz-a", instance="10.0.0.2:9100")))

    fault = Fault.objects.get()
    assert list(Alert.objects.values_list("fault", flat=True)) == [fault.pk, fault.pk]


def test_without_group_labels_every_alert_of_the_business_joins_the_open_fault(make_integration, send):
    integration = make_integration()

    send(integration, p.alertmanager(p.am_alert("CheckoutDown")))
    send(integration, p.alertmanager(p.am_alert("PaymentsTimeout", severity="error")))

    assert Fault.objects.count() == 1


def test_alerts_of_another_business_declare_a_fault_of_their_own(make_integration, send):
    checkout, search = make_integration(), make_integration()

    send(checkout, p.alertmanager(p.am_alert()))
    send(search, p.alertmanager(p.am_alert()))

    assert sorted(Fault.objects.values_list("affected_business", flat=True)) == sorted(
        [checkout.business_id, search.business_id])


# --- resolution ------------------------------------------------------------------------------


@pytest.fixture
def commander(db):
    """The commander of P2 faults, reachable by SMS."""
    person = roster_factories.person("Zhang Wei")
    roster_factories.commander_rule(Level.P2, {"kind": CandidateKind.PERSON, "person": person})
    return person


def test_all_alerts_resolved_tells_the_commander_and_leaves_the_fault_open(make_integration, send, commander):
    integration = make_integration(name="Prometheus prod")
    a, b = p.am_alert(instance="10.0.0.1:9100"), p.am_alert(instance="10.0.0.2:9100")
    send(integration, p.alertmanager(a, b))

    response = send(integration, p.alertmanager(p.resolved(a), p.resolved(b)))

    fault = Fault.objects.get()
    assert response.json() == {"stored": 0, "duplicates": 0, "resolved": 2, "faults": [fault.pk]}
    assert fault.status == Fault.Status.DECLARED
    (cleared,) = events(fault, "monitoring.cleared")
    assert (cleared.data["alerts"], cleared.actor_label) == (2, "Prometheus prod")
    message = Delivery.objects.get(fault=fault, person=commander, idempotency_key__contains=":cleared:")
    assert message.purpose == Delivery.Purpose.MESSAGE
    assert "Prometheus prod: all 2 alerts resolved" in message.body


def test_all_alerts_resolved_recovers_the_fault_when_the_integration_says_so(make_integration, send):
    integration = make_integration(resolve_policy=Integration.ResolvePolicy.RECOVER)
    alert = p.am_alert()
    send(integration, p.alertmanager(alert))

    send(integration, p.alertmanager(p.resolved(alert)))

    fault = Fault.objects.get()
    assert fault.status == Fault.Status.RECOVERED
    assert len(events(fault, "fault.recovered")) == 1
    assert events(fault, "monitoring.cleared") == []


def test_one_of_two_alerts_resolved_changes_nothing(make_integration, send, commander):
    integration = make_integration(resolve_policy=Integration.ResolvePolicy.RECOVER)
    a, b = p.am_alert(instance="10.0.0.1:9100"), p.am_alert(instance="10.0.0.2:9100")
    send(integration, p.alertmanager(a, b))
    seq = Fault.objects.get().last_seq

    response = send(integration, p.alertmanager(p.resolved(a), b))

    fault = Fault.objects.get()
    assert response.json()["resolved"] == 1
    assert fault.status == Fault.Status.DECLARED
    assert fault.last_seq == seq  # nothing on the timeline
    assert sorted(Alert.objects.values_list("status", flat=True)) == ["firing", "resolved"]


def test_a_resolved_warning_does_not_clear_a_fault_whose_alert_still_fires(make_integration, send):
    integration = make_integration(resolve_policy=Integration.ResolvePolicy.RECOVER)
    down, disk = p.am_alert("Down"), p.am_alert("DiskFilling", severity="warning")
    send(integration, p.alertmanager(down))
    send(integration, p.alertmanager(disk))

    send(integration, p.alertmanager(p.resolved(disk)))

    assert Fault.objects.get().status == Fault.Status.DECLARED


# --- a storm ---------------------------------------------------------------------------------


def test_a_storm_of_two_thousand_alerts_declares_one_fault_and_notifies_once(make_integration, send, commander):
    integration = make_integration()
    reader = roster_factories.person("Reader")
    integration.business.notification_recipients.add(reader)
    batches = [
        p.alertmanager(*(p.am_alert("CheckoutDown", instance=f"10.0.{b}.{i}:9100") for i in range(100)))
        for b in range(20)
    ]
    send(integration, batches[0])
    fault = Fault.objects.get()
    notified = Delivery.objects.filter(fault=fault).count()
    assert notified >= 2  # the commander's page and the reader's notification, at least

    answers = [send(integration, batch) for batch in batches[1:]]
    repeats = [send(integration, batch) for batch in batches[:5]]  # Alertmanager re-sending groups

    assert {a.status_code for a in answers + repeats} == {200}
    assert sum(a.json()["duplicates"] for a in repeats) == 500
    assert Alert.objects.count() == 2000
    assert set(Alert.objects.values_list("fault", flat=True)) == {fault.pk}
    assert Fault.objects.count() == 1
    assert len(events(fault, "fault.declared")) == 1
    assert Delivery.objects.filter(fault=fault).count() == notified


def test_the_firing_copy_of_an_ha_pair_arriving_after_the_resolution_declares_nothing(make_integration, send):
    integration = make_integration(resolve_policy=Integration.ResolvePolicy.RECOVER)
    alert = p.am_alert()
    send(integration, p.alertmanager(alert))
    send(integration, p.alertmanager(p.resolved(alert)))

    late = send(integration, p.alertmanager(alert, external_url="http://alertmanager-1.example:9093"))

    assert (late.json()["stored"], late.json()["duplicates"]) == (0, 1)
    assert Alert.objects.get().status == "resolved"
    assert list(Fault.objects.values_list("status", flat=True)) == [Fault.Status.RECOVERED]


def test_a_fault_recovered_by_its_monitoring_names_the_integration_on_the_timeline(make_integration, send):
    integration = make_integration(name="Prometheus prod", resolve_policy=Integration.ResolvePolicy.RECOVER)
    alert = p.am_alert()
    send(integration, p.alertmanager(alert))

    send(integration, p.alertmanager(p.resolved(alert)))

    (recovered,) = events(Fault.objects.get(), "fault.recovered")
    assert recovered.actor_label == "Prometheus prod"

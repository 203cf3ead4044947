"""The dead man's switch: monitoring that stops calling is itself a fault."""

from datetime import timedelta

import pytest

from alerts import heartbeats
from alerts.models import Alert, Integration
from incidents.models import Fault, Level

from .support import events

pytestmark = pytest.mark.django_db

INTERVAL, GRACE = timedelta(minutes=5), timedelta(minutes=2)


@pytest.fixture
def heartbeat(make_integration):
    return make_integration(Integration.Kind.HEARTBEAT, name="Prometheus watchdog", heartbeat_interval=INTERVAL,
                            heartbeat_grace=GRACE, heartbeat_level=Level.P3)


def test_the_first_heartbeat_arms_the_switch(heartbeat, send, clock):
    response = send(heartbeat)

    assert response.status_code == 200
    assert response.json() == {"stored": 0, "duplicates": 0, "resolved": 0, "faults": []}
    heartbeat.refresh_from_db()
    assert heartbeat.last_heartbeat_at == clock.now()
    assert not Alert.objects.exists()


def test_a_heartbeat_missed_beyond_interval_and_grace_declares_that_monitoring_is_blind(heartbeat, send, clock):
    send(heartbeat)
    clock.advance(INTERVAL + GRACE + timedelta(seconds=1))

    declared = heartbeats.check()

    fault = Fault.objects.get()
    assert declared == [fault.pk]
    assert fault.level == Level.P3
    assert fault.title.startswith("Monitoring is blind: Prometheus watchdog: no heartbeat since ")
    alert = Alert.objects.get()
    assert (alert.status, alert.level, alert.rule_name, alert.fault) == ("firing", Level.P3, "heartbeat missed", fault)
    assert events(fault, "fault.declared")[0].data["reason"] == (
        "Prometheus watchdog: “Monitoring is blind: Prometheus watchdog” matched “heartbeat missed”")


def test_a_heartbeat_within_interval_and_grace_is_not_missed(heartbeat, send, clock):
    send(heartbeat)
    clock.advance(INTERVAL + GRACE)

    assert heartbeats.check() == []
    assert not Fault.objects.exists()


def test_checking_again_while_monitoring_is_still_blind_declares_no_second_fault(heartbeat, send, clock):
    send(heartbeat)
    clock.advance(INTERVAL + GRACE + timedelta(seconds=1))
    heartbeats.check()
    clock.advance(INTERVAL)

    assert heartbeats.check() == []
    assert Fault.objects.count() == 1
    assert Alert.objects.count() == 1


def test_the_next_heartbeat_recovers_the_fault(heartbeat, send, clock):
    send(heartbeat)
    clock.advance(INTERVAL + GRACE + timedelta(seconds=1))
    heartbeats.check()
    fault = Fault.objects.get()
    back = clock.advance(timedelta(minutes=3))

    response = send(heartbeat)

    assert response.json() == {"stored": 0, "duplicates": 0, "resolved": 1, "faults": [fault.pk]}
    fault.refresh_from_db()
    assert fault.status == Fault.Status.RECOVERED
    assert len(events(fault, "fault.recovered")) == 1
    alert = Alert.objects.get()
    assert (alert.status, alert.ends_at) == ("resolved", back)


def test_after_recovering_a_heartbeat_missed_again_declares_a_new_fault(heartbeat, send, clock):
    send(heartbeat)
    clock.advance(INTERVAL + GRACE + timedelta(seconds=1))
    heartbeats.check()
    send(heartbeat)
    clock.advance(INTERVAL + GRACE + timedelta(seconds=1))

    assert len(heartbeats.check()) == 1
    assert sorted(Fault.objects.values_list("status", flat=True)) == ["declared", "recovered"]


def test_a_heartbeat_never_called_is_not_armed_and_declares_nothing(heartbeat, clock):
    clock.advance(timedelta(days=1))

    assert heartbeats.check() == []
    assert not Fault.objects.exists()


def test_a_disabled_heartbeat_declares_nothing(heartbeat, send, clock):
    send(heartbeat)
    Integration.objects.filter(pk=heartbeat.pk).update(enabled=False)
    clock.advance(timedelta(hours=1))

    assert heartbeats.check() == []
    assert not Fault.objects.exists()


def test_the_scheduled_task_runs_the_check(heartbeat, send, clock):
    from alerts.tasks import heartbeats_check

    send(heartbeat)
    clock.advance(INTERVAL + GRACE + timedelta(seconds=1))

    assert heartbeats_check.apply().get() == [Fault.objects.get().pk]

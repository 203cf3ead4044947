"""The suspected cause found by itself: Checkout depends on Payments, and both alert together."""

from datetime import timedelta

import pytest
from django.conf import settings

from incidents.models import Fault, Level
from notifications.models import Delivery, Engagement
from roster.tests import factories as roster_factories

from . import payloads as p
from .support import events, put_on_call

pytestmark = pytest.mark.django_db

WINDOW = timedelta(seconds=settings.ALERTS_SUSPECT_WINDOW)


@pytest.fixture
def payments_on_call(db):
    """Payments' emergency contact: on call on its emergency-contact schedule."""
    return roster_factories.person("Zhao Lei")


@pytest.fixture
def world(make_integration, payments_on_call):
    payments = roster_factories.business("Payments")
    schedule = roster_factories.schedule("Payments on call")
    put_on_call(schedule, payments_on_call)
    payments.emergency_schedule = schedule
    payments.save()
    checkout = roster_factories.business("Checkout")
    checkout.depends_on.add(payments)
    w = type("World", (), {})()
    w.payments, w.checkout = payments, checkout
    w.payments_hook = make_integration(business=payments, name="Payments Prometheus")
    w.checkout_hook = make_integration(business=checkout, name="Checkout Prometheus")
    w.search_hook = make_integration(business=roster_factories.business("Search"), name="Search Prometheus")
    return w


def checkout_fault():
    return Fault.objects.get(affected_business__name="Checkout")


def test_a_dependency_alerting_first_is_the_suspect_from_the_declaration(world, send, clock):
    send(world.payments_hook, p.alertmanager(p.am_alert("PaymentsTimeouts", severity="warning")))
    clock.advance(timedelta(minutes=5))

    send(world.checkout_hook, p.alertmanager(p.am_alert("CheckoutErrors")))

    fault = checkout_fault()
    assert list(fault.suspected_cause_businesses.all()) == [world.payments]
    (declared,) = events(fault, "fault.declared")
    assert declared.data["suspected_cause_businesses"] == [{"id": world.payments.pk, "name": "Payments"}]
    assert "Checkout Prometheus: “CheckoutErrors” matched “critical → P2”" in declared.data["reason"]
    assert "Payments alerting since " in declared.data["reason"]
    assert declared.data["reason"].endswith(", a dependency of Checkout")
    assert events(fault, "fault.suspect_added") == []


def test_a_dependency_alerting_once_a_fault_is_open_is_added_as_a_suspect(world, send, clock):
    send(world.checkout_hook, p.alertmanager(p.am_alert("CheckoutErrors")))
    clock.advance(timedelta(minutes=3))

    send(world.payments_hook, p.alertmanager(p.am_alert("PaymentsTimeouts", severity="warning")))

    fault = checkout_fault()
    assert list(fault.suspected_cause_businesses.all()) == [world.payments]
    (added,) = events(fault, "fault.suspect_added")
    assert added.data["business"] == {"id": world.payments.pk, "name": "Payments"}
    assert added.data["reason"].startswith("Payments alerting since ")
    assert added.data["reason"].endswith(", a dependency of Checkout")
    assert added.actor_label == "Payments Prometheus"


def test_a_suspected_dependencys_emergency_contact_is_pulled_in_and_paged(world, send, clock, payments_on_call):
    send(world.checkout_hook, p.alertmanager(p.am_alert("CheckoutErrors")))
    assert not Engagement.objects.filter(person=payments_on_call).exists()
    clock.advance(timedelta(minutes=3))

    send(world.payments_hook, p.alertmanager(p.am_alert("PaymentsTimeouts", severity="warning")))

    fault = checkout_fault()
    engagement = Engagement.objects.get(fault=fault, person=payments_on_call)
    assert engagement.reason == "emergency contact of Payments"
    assert Delivery.objects.filter(fault=fault, person=payments_on_call, purpose=Delivery.Purpose.PAGE).exists()


def test_a_dependency_is_added_once_however_often_it_alerts(world, send, clock):
    send(world.checkout_hook, p.alertmanager(p.am_alert("CheckoutErrors")))

    send(world.payments_hook, p.alertmanager(p.am_alert("PaymentsTimeouts", severity="warning")))
    clock.advance(timedelta(minutes=1))
    send(world.payments_hook, p.alertmanager(p.am_alert("PaymentsErrors", severity="warning")))

    assert len(events(checkout_fault(), "fault.suspect_added")) == 1


def test_a_dependency_that_alerted_before_the_window_is_not_suspected(world, send, clock):
    send(world.payments_hook, p.alertmanager(p.am_alert("PaymentsTimeouts", severity="warning")))
    clock.advance(WINDOW + timedelta(seconds=1))

    send(world.checkout_hook, p.alertmanager(p.am_alert("CheckoutErrors")))

    fault = checkout_fault()
    assert not fault.suspected_cause_businesses.exists()
    assert "dependency" not in events(fault, "fault.declared")[0].data["reason"]


def test_a_dependency_alerting_after_the_window_is_not_added(world, send, clock):
    send(world.checkout_hook, p.alertmanager(p.am_alert("CheckoutErrors")))
    clock.advance(WINDOW + timedelta(seconds=1))

    send(world.payments_hook, p.alertmanager(p.am_alert("PaymentsTimeouts", severity="warning")))

    fault = checkout_fault()
    assert fault.status == Fault.Status.DECLARED
    assert not fault.suspected_cause_businesses.exists()
    assert events(fault, "fault.suspect_added") == []


def test_a_business_that_is_not_a_dependency_is_not_suspected(world, send, clock):
    send(world.search_hook, p.alertmanager(p.am_alert("SearchSlow", severity="warning")))
    send(world.checkout_hook, p.alertmanager(p.am_alert("CheckoutErrors")))
    send(world.search_hook, p.alertmanager(p.am_alert("SearchDown", severity="warning")))

    fault = checkout_fault()
    assert not fault.suspected_cause_businesses.exists()
    assert events(fault, "fault.suspect_added") == []


def test_a_dependant_alerting_is_not_a_suspect_of_its_dependencys_fault(world, send, clock):
    send(world.payments_hook, p.alertmanager(p.am_alert("PaymentsDown")))
    send(world.checkout_hook, p.alertmanager(p.am_alert("CheckoutErrors", severity="warning")))

    payments_fault = Fault.objects.get(affected_business=world.payments)
    assert payments_fault.level == Level.P2
    assert not payments_fault.suspected_cause_businesses.exists()

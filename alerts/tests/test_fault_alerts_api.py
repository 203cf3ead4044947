"""GET /api/v1/faults/<id>/alerts/: the alerts that are part of a fault, for those who may see it."""

import pytest
from rest_framework.test import APIClient

from incidents.models import Fault, RoleAssignment
from incidents.tests import factories as f

from . import payloads as p

pytestmark = pytest.mark.django_db


@pytest.fixture
def fault(make_integration, send):
    integration = make_integration(name="Prometheus prod")
    send(integration, p.alertmanager(p.am_alert("CheckoutDown", instance="10.0.0.1:9100"),
                                     p.am_alert("CheckoutSlow", severity="error", instance="10.0.0.2:9100")))
    send(make_integration(), p.alertmanager(p.am_alert("SearchDown")))  # another business, another fault
    return Fault.objects.get(alerts__title="CheckoutDown")


def get(fault_id, user=None):
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client.get(f"/api/v1/faults/{fault_id}/alerts/")


def test_a_user_who_may_view_faults_gets_the_faults_alerts(fault):
    response = get(fault.pk, f.user("viewer", "incidents.view_fault"))

    assert response.status_code == 200
    rows = response.json()
    assert [(r["title"], r["level"], r["status"], r["integration"]) for r in rows] == [
        ("CheckoutDown", "P2", "firing", "Prometheus prod"), ("CheckoutSlow", "P3", "firing", "Prometheus prod")]
    assert rows[0]["rule_name"] == "critical → P2"
    assert rows[0]["received_count"] == 1
    assert rows[0]["labels"]["instance"] == "10.0.0.1:9100"


def test_someone_holding_a_role_on_the_fault_may_see_its_alerts(fault):
    user = f.user("handler")
    person = f.person("Li Lei", user)
    RoleAssignment.objects.create(fault=fault, person=person, role=RoleAssignment.Role.EMERGENCY_HANDLER,
                                  assigned_at=fault.declared_at)

    assert get(fault.pk, user).status_code == 200


def test_an_anonymous_request_is_told_to_authenticate(fault):
    response = get(fault.pk)

    assert response.status_code == 401
    assert "title" not in response.content.decode()


def test_a_user_without_permission_is_refused(fault):
    response = get(fault.pk, f.user("outsider"))

    assert response.status_code == 403
    assert "CheckoutDown" not in response.content.decode()


def test_an_unknown_fault_is_not_found(fault):
    assert get(fault.pk + 1000, f.user("viewer", "incidents.view_fault")).status_code == 404

"""What a sender is answered when its request cannot be stored, and that nothing is stored then.

Alertmanager does not retry a 4xx and retries a 5xx: the status must say which one applies.
"""

import json
from datetime import timedelta

import pytest
from django.db import connection

from alerts.models import Alert, Integration, LevelRule
from incidents.models import Fault

from . import payloads as p

pytestmark = pytest.mark.django_db

Kind = Integration.Kind


def rows() -> tuple[int, int, int, int]:
    return (Integration.objects.count(), LevelRule.objects.count(), Alert.objects.count(), Fault.objects.count())


def test_a_body_that_is_not_json_is_refused_with_the_reason_and_nothing_is_stored(make_integration, send):
    integration = make_integration()

    response = send(integration, body=b'{"alerts": [{"labels": ')

    assert response.status_code == 400
    assert response.json()["detail"].startswith("The body is not JSON: ")
    assert not Alert.objects.exists()


def test_json_with_nan_is_refused(make_integration, send):
    integration = make_integration(Kind.GENERIC)

    response = send(integration, body=b'{"title": "Checkout slow", "severity": "p2", "value": NaN}')

    assert response.status_code == 400
    assert response.json()["detail"] == "NaN is not a number JSON allows."
    assert not Alert.objects.exists()


def test_an_alertmanager_body_without_an_alert_list_is_refused(make_integration, send):
    integration = make_integration()

    response = send(integration, {"version": "4", "status": "firing"})

    assert response.status_code == 400
    assert "\"alerts\" list" in response.json()["detail"]


def test_a_body_over_one_megabyte_is_refused_as_too_large(make_integration, send):
    integration = make_integration(Kind.GENERIC)
    alert = p.generic(description="x" * (1024 * 1024))

    response = send(integration, alert)

    assert response.status_code == 413
    assert "larger than 1024 KB" in response.json()["detail"]
    assert not Alert.objects.exists()


def test_a_body_just_under_one_megabyte_is_accepted(make_integration, send):
    integration = make_integration(Kind.GENERIC)
    alert = p.generic(annotations={"runbook": "x" * 1000})
    padding = 1024 * 1024 - len(json.dumps({**alert, "pad": ""}))
    body = json.dumps({**alert, "pad": "y" * padding})
    assert len(body) == 1024 * 1024

    response = send(integration, body=body)

    assert response.status_code == 200
    assert Alert.objects.count() == 1


def test_an_unknown_token_is_not_found_and_writes_nothing(make_integration, send):
    integration = make_integration()
    before = rows()

    response = send(integration, p.alertmanager(p.am_alert()), token="not-a-token")

    assert response.status_code == 404
    assert response.json()["detail"] == "No enabled integration has this URL."
    assert rows() == before


def test_a_disabled_integration_is_not_found(make_integration, send):
    integration = make_integration(enabled=False)

    response = send(integration, p.alertmanager(p.am_alert()))

    assert response.status_code == 404
    assert not Alert.objects.exists()


def test_a_url_whose_kind_is_not_the_integrations_is_refused(make_integration, send):
    integration = make_integration(Kind.GRAFANA)

    response = send(integration, p.alertmanager(p.am_alert()), kind="alertmanager")

    assert response.status_code == 400
    assert response.json()["detail"] == "This integration's URL ends in /grafana/, not /alertmanager/."
    assert not Alert.objects.exists()


def test_the_generic_url_of_an_alertmanager_integration_is_refused(make_integration, send):
    integration = make_integration(Kind.ALERTMANAGER)

    response = send(integration, p.generic(), kind="generic")

    assert response.status_code == 400
    assert not Alert.objects.exists()


def test_requests_over_the_rate_limit_are_told_when_to_retry(make_integration, send, clock):
    clock.freeze(clock.now().replace(second=10))
    integration = make_integration(rate_limit=3)
    body = p.alertmanager(p.am_alert())

    statuses = [send(integration, body).status_code for _ in range(3)]
    refused = send(integration, body)

    assert statuses == [200, 200, 200]
    assert refused.status_code == 429
    assert refused["Retry-After"] == "51"  # the rest of the minute, and a second
    assert "More than 3 requests a minute" in refused.json()["detail"]
    assert Alert.objects.get().received_count == 3  # the refused one was not counted


def test_the_rate_limit_starts_again_in_the_next_minute(make_integration, send, clock):
    clock.freeze(clock.now().replace(second=30))
    integration = make_integration(rate_limit=1)
    body = p.alertmanager(p.am_alert())
    send(integration, body)
    assert send(integration, body).status_code == 429

    clock.advance(timedelta(seconds=30))

    assert send(integration, body).status_code == 200


def test_each_integration_has_a_rate_limit_of_its_own(make_integration, send, clock):
    first, second = make_integration(rate_limit=1), make_integration(rate_limit=1)
    send(first, p.alertmanager(p.am_alert()))

    assert send(second, p.alertmanager(p.am_alert())).status_code == 200


def test_alerts_that_cannot_be_stored_are_answered_503_so_that_the_sender_retries(make_integration, send):
    integration = make_integration()
    # The database refuses for real: the table is not there (the test's transaction undoes this).
    table = connection.ops.quote_name(Alert._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {table} RENAME TO alerts_alert_away")

    response = send(integration, p.alertmanager(p.am_alert()))

    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE alerts_alert_away RENAME TO {table}")
    assert response.status_code == 503
    assert response.json()["detail"] == "The alerts could not be stored; retry."
    assert not Alert.objects.exists()
    assert not Fault.objects.exists()


@pytest.mark.parametrize("body", [b"42", b"true", b'"Checkout down"', b"[]", b"null"])
def test_a_generic_body_that_is_not_an_alert_object_is_refused(make_integration, send, body):
    integration = make_integration(Kind.GENERIC)

    response = send(integration, body=body)

    assert response.status_code == 400
    assert response.json()["detail"]
    assert not Alert.objects.exists()

from datetime import timedelta

import pytest

from warroom import heartbeat

pytestmark = pytest.mark.django_db


@pytest.fixture
def no_heartbeat():
    heartbeat.client().delete(heartbeat.KEY)
    yield
    heartbeat.client().delete(heartbeat.KEY)


def test_healthz_is_200_when_database_redis_and_worker_are_up(client, no_heartbeat):
    heartbeat.beat("worker@test")
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert {name: check["ok"] for name, check in body["checks"].items()} == {
        "database": True, "redis": True, "worker": True
    }
    assert body["checks"]["worker"]["hostname"] == "worker@test"


def test_healthz_is_503_before_any_worker_heartbeat(client, no_heartbeat):
    response = client.get("/healthz")
    assert response.status_code == 503
    worker = response.json()["checks"]["worker"]
    assert worker == {"ok": False, "error": "no heartbeat yet: are the Celery worker and beat running?"}


def test_healthz_is_503_when_the_heartbeat_is_stale(client, no_heartbeat, clock, settings):
    heartbeat.beat("worker@test")
    clock.advance(timedelta(seconds=settings.WORKER_HEARTBEAT_STALE_AFTER + 1))
    response = client.get("/healthz")
    assert response.status_code == 503
    assert "stale" in response.json()["checks"]["worker"]["error"]


def test_healthz_is_503_when_redis_does_not_answer(client, settings):
    from warroom.embedded_redis import free_port

    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    response = client.get("/healthz")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["database"]["ok"] is True
    assert checks["redis"]["ok"] is False
    assert "Connection refused" in checks["redis"]["error"] or "Error" in checks["redis"]["error"]
    assert checks["worker"]["ok"] is False


def test_healthz_names_a_provider_in_an_outage_and_stays_200(client, no_heartbeat, settings):
    from notifications.outbox import outages

    heartbeat.beat("worker@test")
    settings.NOTIFY_OUTAGE_AFTER = 1
    outages.observe("aliyun_sms", ok=False, error="HTTP 503")
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    assert [(o["transport"], o["last_error"]) for o in body["providers"]["outages"]] == [("aliyun_sms", "HTTP 503")]

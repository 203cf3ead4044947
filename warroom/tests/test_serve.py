"""`make run`'s start path: a fresh data directory, embedded SQLite and Redis, three real
processes (daphne, Celery worker, Celery beat), demo data, and /healthz answering 200.
Then a fault is declared and driven to closed over HTTP with a token, and Ctrl-C stops
every process that was started."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from incidents.event_types import EventKind
from warroom.embedded_redis import free_port
from warroom.testing.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
START_DEADLINE = 180  # seconds: migrations on a cold SQLite file and three interpreters starting


@pytest.fixture
def product(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(
        WARROOM_DATA_DIR=str(tmp_path / "data"),
        EMBEDDED_REDIS_PORT=str(free_port()),
        WORKER_HEARTBEAT_EVERY="2",
        PYTHONUNBUFFERED="1",
    )
    log = open(tmp_path / "serve.log", "w+")
    process = subprocess.Popen(
        [sys.executable, "manage.py", "serve", "--port", str(port), "--concurrency", "1"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        yield process, base, env, tmp_path / "serve.log"
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


def healthy(base):
    try:
        response = requests.get(f"{base}/healthz", timeout=2)
    except requests.ConnectionError:
        return None
    return response if response.status_code == 200 else None


@pytest.mark.slow
def test_serve_starts_everything_and_ctrl_c_stops_everything(product):
    process, base, env, log_path = product

    def up():
        if process.poll() is not None:
            pytest.fail(f"serve exited with {process.returncode}:\n{log_path.read_text()[-3000:]}")
        return healthy(base)

    response = wait_for(up, START_DEADLINE, "/healthz to answer 200")
    checks = response.json()["checks"]
    assert checks["database"]["vendor"] == "sqlite"
    assert checks["worker"]["ok"] is True

    log = log_path.read_text()
    credentials = json.loads((Path(env["WARROOM_DATA_DIR"]) / "demo-credentials.json").read_text())
    assert f"lead     {credentials['lead']}" in log

    # Sign in to the admin with the printed credentials.
    session = requests.Session()
    login = session.get(f"{base}/admin/login/", timeout=5)
    token = login.cookies["csrftoken"]
    response = session.post(
        f"{base}/admin/login/?next=/admin/",
        data={"username": "admin", "password": credentials["admin"], "csrfmiddlewaretoken": token},
        headers={"Referer": f"{base}/admin/login/"},
        timeout=5,
    )
    assert response.url == f"{base}/admin/"
    assert "Site administration" in response.text

    # Declare a fault with a token and drive it to closed.
    api_token = subprocess.run(
        [sys.executable, "manage.py", "create_api_token", "lead"],
        cwd=ROOT, env=env, capture_output=True, text=True, check=True,
    ).stdout.strip()
    api = requests.Session()
    api.headers["Authorization"] = f"Token {api_token}"
    businesses = {b["slug"]: b["id"] for b in _businesses(api, base)}
    fault = api.post(
        f"{base}/api/v1/faults/",
        json={"title": "Orders fail", "level": "P2", "affected_business": businesses["orders"],
              "suspected_cause_businesses": [businesses["payments"]]},
        timeout=5,
    )
    assert fault.status_code == 201, fault.text
    fid = fault.json()["id"]
    for step in ("mitigated", "recovered", "close"):
        response = api.post(f"{base}/api/v1/faults/{fid}/{step}/", timeout=5)
        assert response.status_code == 200, response.text
    assert api.get(f"{base}/api/v1/faults/{fid}/", timeout=5).json()["status"] == "closed"
    kinds = [e["kind"] for e in api.get(f"{base}/api/v1/faults/{fid}/timeline/", timeout=5).json()]
    # Delivery outcomes from the worker interleave; the fault's own steps are in order.
    steps = [k for k in kinds if k.startswith("fault.")]
    assert steps == [EventKind.FAULT_DECLARED, EventKind.FAULT_MITIGATED, EventKind.FAULT_RECOVERED, EventKind.FAULT_CLOSED]

    # The real worker delivers through the sandbox and records each outcome on the timeline.
    def delivered():
        events = api.get(f"{base}/api/v1/faults/{fid}/timeline/", timeout=5).json()
        return [e for e in events if e["kind"] == EventKind.DELIVERY_OUTCOME and e["data"].get("transport") == "sandbox"]

    assert wait_for(delivered, 60, "a delivery outcome from the worker")

    # Ctrl-C: serve stops and so does every process it started (they share its process group).
    os.killpg(process.pid, signal.SIGINT)
    assert process.wait(60) == 0

    def group_gone():
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            return True
        return False

    wait_for(group_gone, 30, "every started process to exit")


def _businesses(api, base):
    response = api.get(f"{base}/api/v1/businesses/", timeout=5)
    assert response.status_code == 200, response.text
    return response.json()["results"]

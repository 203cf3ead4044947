"""How long the API takes to declare a fault and run it to closed, end to end over HTTP.

Starts the whole product (`manage.py serve`: daphne, Celery worker and beat) on a fresh
data directory — embedded SQLite and Redis unless DATABASE_URL / REDIS_URL are set — then
declares N faults one after another and drives each through assign, check-in, task,
plan, update, mitigated, recovered, close, timing every request.

    .venv/bin/python bench/api_latency.py [--faults 100]
"""

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from warroom.embedded_redis import free_port  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--faults", type=int, default=100)
    args = parser.parse_args()

    data_dir = tempfile.mkdtemp(prefix="warroom-bench-")
    port = free_port()
    env = dict(os.environ, WARROOM_DATA_DIR=data_dir, EMBEDDED_REDIS_PORT=str(free_port()))
    log_path = Path(data_dir) / "serve.log"
    log = open(log_path, "w")
    server = subprocess.Popen(
        [sys.executable, "manage.py", "serve", "--port", str(port)],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    print(f"server log: {log_path}")
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                if requests.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                sys.exit("the product did not start")
            time.sleep(0.5)
        token = subprocess.run(
            [sys.executable, "manage.py", "create_api_token", "lead"],
            cwd=ROOT, env=env, capture_output=True, text=True, check=True,
        ).stdout.strip()
        run(base, token, args.faults)
    finally:
        os.killpg(server.pid, signal.SIGINT)
        server.wait(60)


def run(base, token, count):
    api = requests.Session()
    api.headers["Authorization"] = f"Token {token}"
    timings = defaultdict(list)

    def call(name, method, path, **kw):
        started = time.perf_counter()
        response = api.request(method, f"{base}/api/v1/{path}", timeout=30, **kw)
        timings[name].append((time.perf_counter() - started) * 1000)
        if response.status_code >= 300:
            sys.exit(f"{name}: {response.status_code} {response.text}")
        return response.json()

    businesses = {b["slug"]: b["id"] for b in api.get(f"{base}/api/v1/businesses/").json()["results"]}
    people = api.get(f"{base}/api/v1/people/?search=wang").json()["results"]
    lead = api.get(f"{base}/api/v1/people/?search=zhang").json()["results"][0]
    started = time.perf_counter()
    for i in range(count):
        fault = call("declare", "POST", "faults/", json={
            "title": f"Bench fault {i}", "level": "P2", "affected_business": businesses["orders"],
            "suspected_cause_businesses": [businesses["payments"]], "commander": lead["id"],
        })
        f = f"faults/{fault['id']}/"
        call("assign", "POST", f + "assign/", json={"person": people[0]["id"], "role": "emergency_handler"})
        call("check-in", "POST", f + "check-in/", json={"person": lead["id"]})
        call("task", "POST", f + "tasks/", json={"assignee": people[0]["id"], "kind": "recover", "title": "Roll back"})
        plan = call("plan", "POST", f + "plans/", json={"description": "Restart", "expected_impact": "P3"})
        call("approve", "POST", f + f"plans/{plan['id']}/approve/")
        call("update", "POST", f + "updates/", json={"body": "Rolling back"})
        call("mitigated", "POST", f + "mitigated/")
        call("recovered", "POST", f + "recovered/")
        call("close", "POST", f + "close/")
        call("timeline", "GET", f + "timeline/?after=0")
    elapsed = time.perf_counter() - started

    total = sum(len(v) for v in timings.values())
    print(f"{count} faults, {total} requests in {elapsed:.1f}s ({total / elapsed:.0f} requests/s, one client)")
    print(f"{'request':<10} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
    for name, values in timings.items():
        values.sort()
        p95 = values[min(len(values) - 1, int(len(values) * 0.95))]
        print(f"{name:<10} {statistics.median(values):8.1f} {p95:8.1f} {values[-1]:8.1f}")


if __name__ == "__main__":
    main()

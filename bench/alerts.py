"""Alert ingestion: Alertmanager webhooks at the integration endpoint, 80 % of the alerts
duplicates of alerts already stored, as a ratio to /healthz on the same server.

Starts daphne (`--web N` processes on N ports, clients spread over them) on a fresh data
directory — SQLite or DATABASE_URL, an embedded redis-server or REDIS_URL — with one
business and one Alertmanager integration (default level rules, its rate limit raised out
of the way: the default 600 requests a minute would answer most of this with 429). Then
`--clients` threads send back to back for `--seconds` each: first `GET /healthz` (the
floor, as in bench/api_throughput.py: a database `SELECT 1`, a Redis ping and read, and
the providers' state; it answers 503 here, no worker runs), then `POST
/api/v1/integrations/<token>/alertmanager/` with Alertmanager's webhook body (version 4,
the envelope and `--per-request` alerts, 5 by default).

Of each request's alerts one is new and the others repeat firing alerts the same client
had stored before, picked at random from everything it stored: 80 % duplicates with 5 a
request. Every answer is checked (`stored` 1, `duplicates` the rest) and at the end the
rows are counted against what was sent. The alerts are `severity=warning`, below fault
level with the default rules, so that this measures ingestion (parse, deduplicate, store,
count), not fault declaration; `--severity critical` makes the first new alert declare a
P2 and every later one join that open fault (one business, one group key).

    .venv/bin/python bench/alerts.py [--clients 8] [--seconds 10] [--web 1] [--per-request 5] [--no-record]

Reports requests/s, alerts/s, p50 and p95, and requests/s as a ratio to /healthz. The
result is printed and appended, with the command, to bench/RESULTS.md.
"""

import argparse
import json
import random
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Before anything is imported: this file is bench/alerts.py, and `alerts` must be the app.
sys.path.insert(0, str(ROOT))

from bench.harness import fresh_site, in_threads, percentile, record, start_daphne, stop  # noqa: E402
from warroom.embedded_redis import free_port  # noqa: E402

SECTION = "## Alert ingestion: Alertmanager webhooks, 80 % duplicates, as a ratio to /healthz"
NO_END = "0001-01-01T00:00:00Z"  # what Alertmanager sends as endsAt of a firing alert


def now_rfc3339() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def alert(n: int, severity: str) -> dict:
    labels = {"alertname": "HighLatency", "severity": severity, "service": "checkout", "env": "prod",
              "instance": f"checkout-{n}.prod:9100", "job": "checkout"}
    return {
        "status": "firing",
        "labels": labels,
        "annotations": {"summary": f"p99 latency above 2 s on checkout-{n}",
                        "description": "histogram_quantile(0.99, …) > 2 for 5 minutes"},
        "startsAt": now_rfc3339(),
        "endsAt": NO_END,
        "generatorURL": "http://prometheus.prod:9090/graph?g0.expr=checkout_latency_p99",
        "fingerprint": f"{n:016x}",
    }


def webhook(alerts: list[dict], severity: str) -> bytes:
    """Alertmanager's webhook body (version 4) for one notification of the group."""
    return json.dumps({
        "version": "4",
        "groupKey": '{}:{alertname="HighLatency"}',
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "warroom",
        "groupLabels": {"alertname": "HighLatency"},
        "commonLabels": {"alertname": "HighLatency", "severity": severity, "service": "checkout", "env": "prod",
                         "job": "checkout"},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.prod:9093",
        "alerts": alerts,
    }).encode()


class Run:
    """What the clients did: latencies, alerts sent, answers that were not what they should be."""

    def __init__(self):
        self.lock = threading.Lock()
        self.times: list[float] = []
        self.alerts = self.new = 0
        self.errors: list[str] = []


def hammer(urls, send, clients: int, seconds: float) -> tuple[float, float, float, Run]:
    """Requests/s, p50 and p95 of `clients` threads calling `send(url, client)` back to back for `seconds`."""
    run = Run()
    end = time.monotonic() + seconds

    def client(i):
        url, mine, sent, new, errors = urls[i % len(urls)], [], 0, 0, []
        while time.monotonic() < end:
            t0 = time.monotonic()
            try:
                n_sent, n_new = send(url, i)
            except Exception as exc:  # counted and shown: a benchmark that hides failures measures nothing
                errors.append(f"{type(exc).__name__}: {exc}"[:300])
                continue
            mine.append(time.monotonic() - t0)
            sent, new = sent + n_sent, new + n_new
        with run.lock:
            run.times.extend(mine)
            run.alerts, run.new = run.alerts + sent, run.new + new
            run.errors.extend(errors)

    elapsed = in_threads(client, list(range(clients)))
    if not run.times:
        sys.exit(f"no request succeeded: {run.errors[:3]}")
    return len(run.times) / elapsed, percentile(run.times, 50), percentile(run.times, 95), run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--web", type=int, default=1)
    parser.add_argument("--per-request", type=int, default=5, help="alerts in each webhook; one of them new")
    parser.add_argument("--severity", default="warning", help="warning: below fault level; critical: one P2")
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    if args.per_request < 2:
        parser.error("--per-request must be at least 2 (one new alert, the others duplicates)")

    work = Path(tempfile.mkdtemp(prefix="warroom-bench-alerts-"))
    env, redis = fresh_site(work)
    from django.db import connection

    from alerts.levels import install_defaults
    from alerts.models import Alert, Integration
    from incidents.models import Fault
    from roster.models import Business

    business = Business.objects.create(name="Checkout", slug="checkout")
    integration = Integration.objects.create(
        name="Prometheus prod", kind=Integration.Kind.ALERTMANAGER, business=business, rate_limit=10_000_000
    )
    install_defaults(integration)
    connection.close()
    ports = [free_port() for _ in range(args.web)]
    webs = start_daphne(ports, env, work)
    bases = [f"http://127.0.0.1:{p}" for p in ports]

    numbers = iter(range(1, 10**9))  # next() on a range iterator is atomic under the GIL
    stored: dict[int, list[int]] = {i: [] for i in range(args.clients)}  # each client's firing alerts
    duplicates = args.per_request - 1

    def post(base: str, alerts: list[dict]) -> dict:
        request = urllib.request.Request(
            f"{base}{integration.path}", data=webhook(alerts, args.severity), method="POST",
            headers={"Content-Type": "application/json", "User-Agent": "Alertmanager/0.25.0"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def healthz(base: str, _client: int) -> tuple[int, int]:
        try:
            urllib.request.urlopen(f"{base}/healthz", timeout=30).read()
        except urllib.error.HTTPError as exc:
            if exc.code != 503:  # 503: no worker's heartbeat here; the floor is its work, not its verdict
                raise
        return 0, 0

    def ingest(base: str, client: int) -> tuple[int, int]:
        mine = stored[client]
        new = next(numbers)
        repeats = random.choices(mine, k=duplicates)
        alerts = [alert(new, args.severity), *(alert(n, args.severity) for n in repeats)]
        random.shuffle(alerts)
        answer = post(base, alerts)
        if (answer["stored"], answer["duplicates"]) != (1, duplicates):
            raise AssertionError(f"expected 1 stored and {duplicates} duplicates, got {answer}")
        mine.append(new)
        return len(alerts), 1

    try:
        # Every client starts with alerts of its own already stored, so that its first request has repeats.
        for client in range(args.clients):
            seed = [next(numbers) for _ in range(args.per_request)]
            answer = post(bases[client % len(bases)], [alert(n, args.severity) for n in seed])
            assert answer["stored"] == len(seed), answer
            stored[client].extend(seed)
        floor, floor_p50, floor_p95, _ = hammer(bases, healthz, args.clients, args.seconds)
        rate, p50, p95, run = hammer(bases, ingest, args.clients, args.seconds)
    finally:
        stop(webs)
        if redis:
            redis.stop()

    # What the database holds must be what was sent: one row per new alert, every repeat counted on it.
    from django.db.models import Sum

    seeded = args.clients * args.per_request
    rows = Alert.objects.filter(integration=integration).count()
    counted = Alert.objects.filter(integration=integration).aggregate(n=Sum("received_count"))["n"] or 0
    faults = Fault.objects.filter(affected_business=business).count()
    elapsed = len(run.times) / rate
    lines = [
        f"{args.clients} clients, {args.web} daphne process(es), {args.seconds:.0f} s each; "
        f"{args.per_request} alerts a request ({duplicates} of them repeats of stored firing alerts), "
        f"severity {args.severity}",
        "request            req/s   alerts/s   p50 ms   p95 ms   ratio to healthz",
        f"healthz           {floor:6.0f}          -   {floor_p50 * 1000:6.1f}   {floor_p95 * 1000:6.1f}   "
        f"{1:15.2f}×",
        f"alertmanager      {rate:6.0f}   {run.alerts / elapsed:8.0f}   {p50 * 1000:6.1f}   {p95 * 1000:6.1f}   "
        f"{rate / floor:15.2f}×",
        f"check: {len(run.times)} webhooks, {run.alerts} alerts ({run.new} new) → {rows} rows "
        f"(expected {run.new + seeded}), received_count total {counted} (expected {run.alerts + seeded}), "
        f"faults {faults}, failed requests {len(run.errors)}",
    ]
    if run.errors:
        lines.append(f"first failure: {run.errors[0]}")
    print("\n".join(lines))
    if not args.no_record:
        record(SECTION, f"--clients {args.clients} --seconds {args.seconds:.0f} --web {args.web} "
                        f"--per-request {args.per_request} --severity {args.severity}", lines)


if __name__ == "__main__":
    main()

"""API throughput with several clients, as a ratio to /healthz on the same server.

Starts daphne (`--web N` processes on N ports, clients spread over them) on a fresh data
directory — SQLite or DATABASE_URL, an embedded redis-server or REDIS_URL — and, for each
kind of request, lets `--clients` threads send it back to back for `--seconds`: `/healthz`
(the floor: a request that does almost nothing), `GET faults/{id}/`, and `POST faults/`
(a declaration, with its roles, group, pages and notifications written in one transaction).

    .venv/bin/python bench/api_throughput.py [--clients 8] [--seconds 10] [--web 1] [--no-record]

Reports requests/s, p50 and the ratio to /healthz, and one client's requests/s for
comparison. The result is printed and appended, with the command, to bench/RESULTS.md.
"""

import argparse
import json
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.harness import commander_and_fault, fresh_site, in_threads, percentile, record, start_daphne, stop  # noqa: E402
from warroom.embedded_redis import free_port  # noqa: E402

SECTION = "## API throughput, several clients, as a ratio to /healthz"


def hammer(urls, make_request, clients: int, seconds: float) -> tuple[float, float]:
    """Requests/s and p50 of `clients` threads sending back to back for `seconds`."""
    times: list[float] = []
    lock = threading.Lock()
    end = time.monotonic() + seconds

    def client(i):
        url = urls[i % len(urls)]
        mine = []
        while time.monotonic() < end:
            request = make_request(url)
            t0 = time.monotonic()
            try:
                urllib.request.urlopen(request, timeout=30).read()
            except urllib.error.HTTPError as exc:
                # /healthz answers 503 here (no worker runs): the floor is its work, not its verdict.
                if exc.code >= 500 and not request.full_url.endswith("/healthz"):
                    raise
            mine.append(time.monotonic() - t0)
        with lock:
            times.extend(mine)

    elapsed = in_threads(client, list(range(clients)))
    return len(times) / elapsed, percentile(times, 50)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--web", type=int, default=1)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="warroom-bench-api-"))
    env, redis = fresh_site(work)
    from django.db import connection
    from rest_framework.authtoken.models import Token

    lead, fault = commander_and_fault()
    token = Token.objects.create(user=lead).key
    business = fault.affected_business_id
    connection.close()
    ports = [free_port() for _ in range(args.web)]
    webs = start_daphne(ports, env, work)
    bases = [f"http://127.0.0.1:{p}" for p in ports]
    auth = {"Authorization": f"Token {token}", "Content-Type": "application/json"}
    counter = iter(range(10**9))
    kinds = {
        "healthz": lambda base: urllib.request.Request(f"{base}/healthz"),
        "GET fault": lambda base: urllib.request.Request(f"{base}/api/v1/faults/{fault.pk}/", headers=auth),
        "declare": lambda base: urllib.request.Request(
            f"{base}/api/v1/faults/", method="POST", headers=auth,
            data=json.dumps({"title": f"Storm {next(counter)}", "level": "P3", "impact": "Some fail",
                             "affected_business": business}).encode(),
        ),
    }
    rows = {}
    try:
        for name, make in kinds.items():
            rows[name] = (hammer(bases, make, args.clients, args.seconds), hammer(bases, make, 1, args.seconds / 2))
    finally:
        stop(webs)
        if redis:
            redis.stop()
    floor = rows["healthz"][0][0]
    lines = [f"{args.clients} clients, {args.web} daphne process(es), {args.seconds:.0f} s each",
             "request      req/s   p50 ms   ratio to healthz   one client req/s"]
    for name, ((rate, p50), (one, _)) in rows.items():
        lines.append(f"{name:12} {rate:6.0f}   {p50 * 1000:6.1f}   {rate / floor:15.2f}×   {one:10.0f}")
    print("\n".join(lines))
    if not args.no_record:
        record(SECTION, f"--clients {args.clients} --seconds {args.seconds:.0f} --web {args.web}", lines)


if __name__ == "__main__":
    main()

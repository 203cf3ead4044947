"""A long fault: the war-room page, its panels and the timeline API of a fault with 10,000
timeline events (half of them progress updates), through the real web tier.

Starts daphne on a fresh data directory (SQLite or DATABASE_URL, an embedded redis-server
or REDIS_URL), builds the fault through the services, and times `--requests` reads of each
as the commander.

    .venv/bin/python bench/long_fault.py [--events 10000] [--requests 50] [--no-record]

Reports p50/p95 and the size of each answer. The result is printed and appended, with the
command, to bench/RESULTS.md.
"""

import argparse
import http.cookiejar
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.harness import commander_and_fault, fresh_site, percentile, record, session_of, start_daphne, stop  # noqa: E402
from warroom.embedded_redis import free_port  # noqa: E402

SECTION = "## A long fault: 10,000 timeline events"



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="warroom-bench-long-"))
    env, redis = fresh_site(work)
    from django.db import connection

    from incidents import services

    lead, fault = commander_and_fault()
    built = time.monotonic()
    for i in range(args.events // 2):
        services.status_update_post(fault=fault, body=f"Step {i}: error rate {30 - i % 30}%", actor=lead)
        services.delivery_outcome_record(fault=fault, text=f"DING to someone sent ({i})", data={"status": "sent"})
    built = time.monotonic() - built
    fault.refresh_from_db()
    session = session_of(lead)
    connection.close()

    port = free_port()
    web = start_daphne([port], env, work)
    try:
        base = f"http://127.0.0.1:{port}"
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        opener.addheaders = [("Cookie", f"sessionid={session}")]
        lines = [f"{fault.last_seq} timeline events ({args.events // 2} updates), built in {built:.0f} s"]
        for name, path in (("page", f"/faults/{fault.pk}/"), ("panels", f"/faults/{fault.pk}/panels/"),
                           ("timeline API, first page", f"/api/v1/faults/{fault.pk}/timeline/?after=0"),
                           ("timeline API, last page", f"/api/v1/faults/{fault.pk}/timeline/?after={max(0, fault.last_seq - 200)}")):
            times, size = [], 0
            for _ in range(args.requests):
                t0 = time.monotonic()
                size = len(opener.open(base + path, timeout=30).read())
                times.append(time.monotonic() - t0)
            lines.append(f"{name:26} p50 {percentile(times, 50)*1000:5.0f} ms   p95 {percentile(times, 95)*1000:5.0f} ms   "
                         f"{size / 1024:6.1f} KB")
    finally:
        stop(web)
        if redis:
            redis.stop()
    print("\n".join(lines))
    if not args.no_record:
        record(SECTION, f"--events {args.events} --requests {args.requests}", lines)


if __name__ == "__main__":
    main()

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
import os
import platform
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from warroom.embedded_redis import EmbeddedRedis, free_port  # noqa: E402

RESULTS = ROOT / "bench" / "RESULTS.md"
SECTION = "## A long fault: 10,000 timeline events"


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="warroom-bench-long-"))
    redis = None if os.environ.get("REDIS_URL") else EmbeddedRedis(free_port(), work / "redis").start()
    env = {
        "DJANGO_SETTINGS_MODULE": "warroom.settings",
        "WARROOM_DATA_DIR": str(work / "data"),
        "DATABASE_URL": os.environ.get("DATABASE_URL") or f"sqlite:///{work / 'bench.sqlite3'}",
        "REDIS_URL": os.environ.get("REDIS_URL") or redis.url,
        "PYTHONUNBUFFERED": "1",
    }
    os.environ.update(env)

    import django

    django.setup()
    from django.contrib.auth.models import Permission, User
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    from incidents import services
    from incidents.models import Level
    from roster.models import Business, Person

    call_command("migrate", verbosity=0)
    lead = User.objects.create_user("bench-lead", password="x")
    lead.user_permissions.add(*Permission.objects.filter(codename__in=["add_fault", "view_fault", "manage_fault"]))
    commander = Person.objects.create(name="Bench Lead", user=lead, paging_methods=[])
    fault = services.fault_declare(title="Checkout fails", level=Level.P2, impact="Payments fail",
                                   affected_business=Business.objects.create(name="Payments", slug="payments"),
                                   commander=commander)
    built = time.monotonic()
    for i in range(args.events // 2):
        services.status_update_post(fault=fault, body=f"Step {i}: error rate {30 - i % 30}%", actor=lead)
        services.delivery_outcome_record(fault=fault, text=f"DING to someone sent ({i})", data={"status": "sent"})
    built = time.monotonic() - built
    fault.refresh_from_db()
    client = Client()
    client.force_login(lead)
    session = client.cookies["sessionid"].value
    connection.close()

    port = free_port()
    log = open(work / "web.log", "w")
    web = subprocess.Popen([sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "warroom.asgi:application"],
                           cwd=ROOT, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        opener.addheaders = [("Cookie", f"sessionid={session}")]
        end = time.monotonic() + 60
        while True:
            try:
                opener.open(f"{base}/faults/{fault.pk}/", timeout=10).read()
                break
            except OSError:
                if time.monotonic() > end:
                    sys.exit(f"daphne did not start; see {work}")
                time.sleep(0.2)
        lines = [f"{fault.last_seq} timeline events ({args.events // 2} updates), built in {built:.0f} s"]
        for name, path in (("page", f"/faults/{fault.pk}/"), ("panels", f"/faults/{fault.pk}/panels/"),
                           ("timeline API, first page", f"/api/v1/faults/{fault.pk}/timeline/?after=0"),
                           ("timeline API, last page", f"/api/v1/faults/{fault.pk}/timeline/?after={fault.last_seq - 200}")):
            times, size = [], 0
            for _ in range(args.requests):
                t0 = time.monotonic()
                size = len(opener.open(base + path, timeout=30).read())
                times.append(time.monotonic() - t0)
            lines.append(f"{name:26} p50 {percentile(times, 50)*1000:5.0f} ms   p95 {percentile(times, 95)*1000:5.0f} ms   "
                         f"{size / 1024:6.1f} KB")
    finally:
        web.terminate()
        web.wait(15)
        log.close()
        if redis:
            redis.stop()
    print("\n".join(lines))
    if not args.no_record:
        database = "PostgreSQL" if env["DATABASE_URL"].startswith("postgres") else "SQLite"
        prefix = "DATABASE_URL=… REDIS_URL=… " if database == "PostgreSQL" else ""
        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        with RESULTS.open("a") as out:
            if SECTION not in RESULTS.read_text():
                out.write(f"\n{SECTION}\n")
            out.write(f"\n`{prefix}.venv/bin/python bench/long_fault.py --events {args.events} --requests {args.requests}`\n\n"
                      f"{stamp} — {os.cpu_count()} cores, Python {platform.python_version()}, {database}:\n\n```\n"
                      + "\n".join(lines) + "\n```\n")


if __name__ == "__main__":
    main()

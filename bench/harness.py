"""What the benchmarks share: a fresh site on its own data directory, daphne, percentiles."""

import os
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

from warroom import processes as warroom_processes
from warroom.embedded_redis import EmbeddedRedis, free_port

ROOT = Path(__file__).resolve().parents[1]


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def fresh_site(work: Path) -> tuple[dict, EmbeddedRedis | None]:
    """Point this process (and what it starts) at a new database and Redis, set Django up, migrate.

    SQLite in `work` unless DATABASE_URL is set; an embedded redis-server unless REDIS_URL is.
    Returns the environment for subprocesses and the embedded Redis to stop (or None).
    """
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
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    return env, redis


def commander_and_fault():
    """A commander who may run any fault (with a Person), and a declared P2 he commands."""
    from django.contrib.auth.models import Permission, User

    from incidents import services
    from incidents.models import Level
    from roster.models import Business, Person

    lead = User.objects.create_user("bench-lead", password="x")
    lead.user_permissions.add(*Permission.objects.filter(codename__in=["add_fault", "view_fault", "manage_fault"]))
    commander = Person.objects.create(name="Bench Lead", user=lead, paging_methods=[])
    fault = services.fault_declare(
        title="Checkout fails", level=Level.P2, impact="Payments fail",
        affected_business=Business.objects.create(name="Payments", slug="payments"), commander=commander,
    )
    return lead, fault


def session_of(user) -> str:
    from django.test import Client

    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


def start_daphne(ports: list[int], env: dict, work: Path) -> list[subprocess.Popen]:
    """One daphne per port, each answering before this returns."""
    webs = []
    for port in ports:
        log = open(work / f"web-{port}.log", "w")
        webs.append(subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "warroom.asgi:application"],
            cwd=ROOT, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT,
        ))
    for port in ports:
        end = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2)
                break
            except urllib.error.HTTPError:
                break  # it answers (503 without a worker is fine here)
            except OSError:
                if time.monotonic() > end:
                    stop(webs)
                    sys.exit(f"daphne on {port} did not start; see {work}")
                time.sleep(0.2)
    return webs


def in_threads(target, arguments: list) -> float:
    """Run `target(argument)` for each argument, each on a thread of its own; the seconds it took."""
    threads = [threading.Thread(target=target, args=(argument,)) for argument in arguments]
    began = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.monotonic() - began


def stop(processes) -> None:
    warroom_processes.stop(processes)


def record(section: str, arguments: str, lines: list[str]) -> None:
    """Append a run's figures, with the command that produced them, under `section` of RESULTS.md."""
    import platform
    from datetime import datetime, timezone

    results = ROOT / "bench" / "RESULTS.md"
    database = "PostgreSQL" if os.environ.get("DATABASE_URL", "").startswith("postgres") else "SQLite"
    prefix = "DATABASE_URL=… REDIS_URL=… " if database == "PostgreSQL" else ""
    script = Path(sys.argv[0]).name
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    with results.open("a") as out:
        if section not in results.read_text():
            out.write(f"\n{section}\n")
        out.write(f"\n`{prefix}.venv/bin/python bench/{script} {arguments}`\n\n{stamp} — {os.cpu_count()} cores, "
                  f"Python {platform.python_version()}, {database}:\n\n```\n" + "\n".join(lines) + "\n```\n")

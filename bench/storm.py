"""A storm of faults: N faults declared at once, ~10 people each; how long from each
declaration to its first page at the provider.

Everything real and on a fresh data directory: the database (SQLite here, or
DATABASE_URL), an embedded redis-server (or REDIS_URL), the loopback provider (DingTalk
and Alibaba Cloud wire protocols, signatures checked), Celery workers one per queue as
`make run` starts them (`pages`, `messages`, `scheduler`) and Celery beat. Each fault has
a commander, a fault handler, and the on-call emergency contact of its affected business
and of each of its four suspected-cause businesses: seven people, each paged by DING call
first.

    .venv/bin/python bench/storm.py [--faults 200] [--no-record]
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_storm REDIS_URL=redis://127.0.0.1:6379/9 \\
        .venv/bin/python bench/storm.py --faults 200

Reports, from the committed declaration to the provider's acceptance of its first page
(the page row's `sent_at`): p50, p95, p99 and max; and the Celery tasks one declaration
queued. The result is printed and appended, with the command, to bench/RESULTS.md.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.harness import in_threads, percentile, record, stop  # noqa: E402
from tools.fakeprovider import FakeProvider  # noqa: E402  (no Django needed)
from warroom.embedded_redis import EmbeddedRedis, free_port  # noqa: E402

SECTION = "## A storm of faults: declaration to first page"
DEADLINE = 600


def environment(work: Path, fake: FakeProvider, redis_url: str) -> dict:
    c = fake.config
    return {
        "DJANGO_SETTINGS_MODULE": "warroom.settings",
        "WARROOM_DATA_DIR": str(work / "data"),
        "DATABASE_URL": os.environ.get("DATABASE_URL") or f"sqlite:///{work / 'bench.sqlite3'}",
        "REDIS_URL": redis_url,
        "DINGTALK_API_BASE": fake.url, "DINGTALK_OAPI_BASE": fake.url,
        "ALIYUN_SMS_ENDPOINT": fake.url, "ALIYUN_VOICE_ENDPOINT": fake.url,
        "DINGTALK_APP_KEY": c.app_key, "DINGTALK_APP_SECRET": c.app_secret,
        "DINGTALK_ROBOT_CODE": "dingbench", "DINGTALK_SCENE_TEMPLATE_ID": "tpl-scene",
        "DINGTALK_CARD_TEMPLATE_ID": "tpl-card.schema", "DINGTALK_CARD_CALLBACK_SECRET": c.card_callback_secret,
        "ALIYUN_ACCESS_KEY_ID": c.access_key_id, "ALIYUN_ACCESS_KEY_SECRET": c.access_key_secret,
        "ALIYUN_SMS_SIGN_NAME": "战情室", "ALIYUN_SMS_TEMPLATE_CODE": "SMS_000001",
        "ALIYUN_TTS_CODE": "TTS_000001", "ALIYUN_VOICE_SHOW_NUMBER": "057100000000",
        "PYTHONUNBUFFERED": "1",
    }



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--faults", type=int, default=200)
    parser.add_argument("--no-record", action="store_true", help="print only; do not append to RESULTS.md")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="warroom-bench-storm-"))
    fake = FakeProvider().start()
    redis = None
    if not os.environ.get("REDIS_URL"):
        redis = EmbeddedRedis(free_port(), work / "redis").start()
    env = environment(work, fake, os.environ.get("REDIS_URL") or redis.url)
    os.environ.update(env)

    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from django.db import connection

    from incidents import services
    from incidents.models import Level
    from notifications.models import Delivery
    from roster.models import Business, PagingMethod, Person
    from roster.tests import factories as roster

    n = args.faults

    def person(name: str) -> Person:
        i = Person.objects.count() + 1
        return Person.objects.create(
            name=name, phone=f"+86139{i:08d}", dingtalk_user_id=f"bench{i}", email=f"b{i}@example.com",
            paging_methods=[PagingMethod.DINGTALK_DING_PHONE, PagingMethod.ALIYUN_VOICE, PagingMethod.ALIYUN_SMS],
        )

    def business(name: str) -> Business:
        schedule = roster.schedule(name=f"{name} on call")
        roster.rotation(schedule, [person(f"{name} contact")], start_date=datetime(2026, 1, 5).date())
        return Business.objects.create(name=name, slug=name.lower().replace(" ", "-"), emergency_schedule=schedule)

    setups = [
        (business(f"Affected {i}"), [business(f"Suspect {i}-{k}") for k in range(4)],
         person(f"Commander {i}"), person(f"Handler {i}"))
        for i in range(n)
    ]
    connection.close()

    logs, processes = [], []

    def spawn(name: str, argv: list[str]) -> None:
        log = open(work / f"{name}.log", "w")
        logs.append(log)
        processes.append(subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "warroom", *argv], cwd=ROOT, env={**os.environ, **env},
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        ))

    spawn("pages", ["worker", "-l", "warning", "-Q", "pages", "-c", "2", "-n", "pages@%h"])
    spawn("messages", ["worker", "-l", "warning", "-Q", "messages", "-c", "2", "-n", "messages@%h"])
    spawn("scheduler", ["worker", "-l", "warning", "-Q", "scheduler", "-c", "1", "-n", "scheduler@%h"])
    spawn("beat", ["beat", "-l", "warning", "-s", str(work / "beat-schedule")])
    try:
        from celery import current_app

        inspect_until = time.monotonic() + 120
        while len(current_app.control.ping(timeout=1) or []) < 3:
            if time.monotonic() > inspect_until:
                sys.exit(f"the workers did not start; see {work}")

        # Count what the declarations queue.
        queued = []
        real_send = current_app.send_task

        def counting(name, *a, **kw):
            queued.append(name)
            return real_send(name, *a, **kw)

        current_app.send_task = counting

        faults, lock = [], threading.Lock()

        def declare(chunk):
            for affected, suspects, commander, handler in chunk:
                f = services.fault_declare(
                    title=f"Storm {affected.name}", level=Level.P2, impact="Payments fail",
                    affected_business=affected, suspected_cause_businesses=suspects,
                    commander=commander, fault_handler=handler,
                )
                with lock:
                    faults.append(f.pk)
            connection.close()

        started = time.monotonic()
        in_threads(declare, [setups[i::4] for i in range(4)])
        declared_in = time.monotonic() - started
        tasks_per_declaration = len(queued) / n

        def first_pages():
            rows = Delivery.objects.filter(fault_id__in=faults, purpose=Delivery.Purpose.PAGE, sent_at__isnull=False)
            firsts = {}
            for fault_id, sent_at, declared_at in rows.values_list("fault_id", "sent_at", "fault__declared_at"):
                wait = (sent_at - declared_at).total_seconds()
                firsts[fault_id] = min(wait, firsts.get(fault_id, wait))
            return firsts

        end = time.monotonic() + DEADLINE
        while len(firsts := first_pages()) < n:
            if time.monotonic() > end:
                sys.exit(f"only {len(firsts)} of {n} faults had a page out after {DEADLINE} s; see {work}")
            time.sleep(0.5)
        waits = list(firsts.values())
        pages = Delivery.objects.filter(fault_id__in=faults, purpose=Delivery.Purpose.PAGE).count()
    finally:
        stop(processes)
        for log in logs:
            log.close()
        fake.stop()
        if redis:
            redis.stop()

    lines = [
        f"{n} faults declared in {declared_in:.1f} s from 4 threads; {pages} page rows; "
        f"{tasks_per_declaration:.1f} Celery tasks queued per declaration",
        "declaration → first page accepted at the provider:",
        f"  p50 {percentile(waits, 50):.2f} s   p95 {percentile(waits, 95):.2f} s   "
        f"p99 {percentile(waits, 99):.2f} s   max {max(waits):.2f} s",
    ]
    print("\n".join(lines))
    if not args.no_record:
        record(SECTION, f"--faults {n}", lines)


if __name__ == "__main__":
    main()

"""How many messages one Celery worker process delivers per second through the outbox.

SMS through Alibaba Cloud's wire protocol to the loopback provider, which verifies every
ACS3-HMAC-SHA256 signature. Everything is set up here on a fresh data directory: a SQLite
database (migrated), an embedded redis-server, the loopback provider, and one worker
process (`celery worker -P solo`, one process, one message at a time).

Two phases:
- burst: N rows committed at once; messages/s from the commit to the last `sent`, and
  the time from each row's creation to `sent` (mostly its wait in the queue);
- paced: rows created one at a time at about half that rate, so the time from creation
  to `sent` is the outbox's own latency (queueing, claim, signed request, recording).

    .venv/bin/python bench/outbox_throughput.py [--messages 500] [--paced 100] [--no-record]

The result is printed and appended, with the command, to bench/RESULTS.md.
"""

import argparse
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tools.fakeprovider import FakeProvider  # noqa: E402  (no Django needed)
from warroom.embedded_redis import EmbeddedRedis, free_port  # noqa: E402

RESULTS = ROOT / "bench" / "RESULTS.md"
SECTION = "## Outbox throughput, one worker process, SMS to the loopback provider"
DEADLINE = 300  # seconds for any one phase


def environment(work: Path, fake: FakeProvider, redis: EmbeddedRedis) -> dict:
    c = fake.config
    return {
        "DJANGO_SETTINGS_MODULE": "warroom.settings",
        "WARROOM_DATA_DIR": str(work / "data"),
        "DATABASE_URL": f"sqlite:///{work / 'bench.sqlite3'}",
        "REDIS_URL": redis.url,
        # Only Alibaba Cloud SMS is configured; everything else would go to the sandbox.
        "ALIYUN_SMS_ENDPOINT": fake.url,
        "ALIYUN_ACCESS_KEY_ID": c.access_key_id,
        "ALIYUN_ACCESS_KEY_SECRET": c.access_key_secret,
        "ALIYUN_SMS_SIGN_NAME": "战情室",
        "ALIYUN_SMS_TEMPLATE_CODE": "SMS_000001",
        "PYTHONUNBUFFERED": "1",
    }


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def wait_until(condition, what: str, worker: subprocess.Popen, log: Path) -> None:
    end = time.monotonic() + DEADLINE
    while not condition():
        if worker.poll() is not None:
            sys.exit(f"the worker exited with {worker.returncode}; see {log}")
        if time.monotonic() > end:
            sys.exit(f"timed out waiting for {what}; see {log}")
        time.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=500, help="rows in the burst")
    parser.add_argument("--paced", type=int, default=100, help="rows in the paced phase (0: skip it)")
    parser.add_argument("--no-record", action="store_true", help="print only; do not append to RESULTS.md")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="warroom-bench-outbox-"))
    fake = FakeProvider().start()
    redis = EmbeddedRedis(free_port(), work / "redis").start()
    env = environment(work, fake, redis)
    # Before Django reads its settings: this run's database, Redis and provider, nothing else.
    os.environ.update(env)

    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)

    from django.db import transaction

    from incidents import services as incident_services
    from incidents.models import Level
    from notifications.channels import message_params
    from notifications.outbox.rows import deliveries_cancel, delivery_create
    from notifications.models import Channel, Delivery
    from roster.models import Business, PagingMethod, Person

    business = Business.objects.create(name="Payments", slug="payments")
    fault = incident_services.fault_declare(title="Checkout fails", level=Level.P2, affected_business=business)
    deliveries_cancel(fault=fault, reason="not measured")  # its group: nobody to put in it
    people = [
        Person.objects.create(name=f"Person {i}", phone=f"+8613900{i:06d}", paging_methods=[PagingMethod.ALIYUN_SMS])
        for i in range(50)
    ]
    params = message_params(fault)
    counter = iter(range(10**9))

    def create() -> Delivery:
        i = next(counter)
        return delivery_create(
            fault=fault, channel=Channel.ALIYUN_SMS, person=people[i % len(people)],
            subject="P2 Checkout fails", body="Some payments fail", payload={"params": params},
            idempotency_key=f"bench:{i}",
        )

    log = work / "worker.log"
    worker = subprocess.Popen(
        [
            sys.executable, "-m", "celery", "-A", "warroom", "worker", "-l", "warning", "-P", "solo", "-c", "1",
            "--without-gossip", "--without-mingle", "--without-heartbeat",
        ],
        cwd=ROOT, env={**os.environ, **env}, stdout=open(log, "w"), stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        # Warm up: the worker is up, its connections are open, the first import is done.
        first = create()
        sent = Delivery.objects.filter(status=Delivery.Status.SENT)
        wait_until(lambda: sent.filter(pk=first.pk).exists(), "the warm-up message", worker, log)

        # Burst: every row committed at once; their tasks are queued after the commit.
        with transaction.atomic():
            burst = [create().pk for _ in range(args.messages)]
        committed = time.time()
        rows = Delivery.objects.filter(pk__in=burst)
        wait_until(lambda: rows.filter(status=Delivery.Status.SENT).count() == len(burst), "the burst", worker, log)
        times = list(rows.values_list("created_at", "sent_at"))
        last_sent = max(s for _, s in times).timestamp()
        rate = len(burst) / (last_sent - committed)
        burst_latency = [(s - c).total_seconds() for c, s in times]

        paced_latency, pace = [], rate / 2
        if args.paced:
            paced = []
            start = time.monotonic()
            for n in range(args.paced):
                # Hold the pace against the schedule, not the previous row.
                time.sleep(max(0.0, start + n / pace - time.monotonic()))
                paced.append(create().pk)
            rows = Delivery.objects.filter(pk__in=paced)
            wait_until(lambda: rows.filter(status=Delivery.Status.SENT).count() == len(paced), "the paced run", worker, log)
            paced_latency = [(s - c).total_seconds() for c, s in rows.values_list("created_at", "sent_at")]

        # Every request reached the provider once, signed correctly (a bad signature is a 400).
        calls = fake.calls("SendSms")
        expected = 1 + args.messages + args.paced
        assert len(calls) == expected, (len(calls), expected)
        assert len({c.query["OutId"] for c in calls}) == expected
        assert all(c.status == 200 and c.answer.get("Code") == "OK" for c in calls)
    finally:
        try:
            os.killpg(worker.pid, signal.SIGTERM)
            worker.wait(30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
        redis.stop()
        fake.stop()

    lines = [
        f"- burst of {args.messages}: **{rate:.0f} messages/s**; creation → sent p50 {ms(statistics.median(burst_latency))}, "
        f"p95 {ms(percentile(burst_latency, 95))} (mostly the wait behind the rest of the burst)",
    ]
    if paced_latency:
        lines.append(
            f"- paced, {args.paced} at {pace:.0f}/s: creation → sent p50 {ms(statistics.median(paced_latency))}, "
            f"p95 {ms(percentile(paced_latency, 95))}"
        )
    command = "`.venv/bin/python bench/outbox_throughput.py" + "".join(
        f" {a}" for a in sys.argv[1:] if a != "--no-record"
    ) + "`"
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    machine = f"{os.cpu_count()} cores, Python {platform.python_version()}, SQLite + embedded Redis"
    result = "\n".join([f"{when} — {machine}:", *lines])
    print(result)
    if not args.no_record:
        record(command, result)


def record(command: str, result: str) -> None:
    """Add the result at the end of this benchmark's section of RESULTS.md (created if missing).

    Other sections of the file are left as they are, wherever they are.
    """
    text = RESULTS.read_text() if RESULTS.exists() else (
        "# Benchmarks\n\nTests never assert timings; these numbers are where timings live. "
        "Each section names the command that produced it.\n"
    )
    if SECTION not in text:
        text = text.rstrip("\n") + "\n\n" + "\n".join([
            SECTION,
            "",
            "`bench/outbox_throughput.py` sets up a fresh SQLite database, an embedded Redis, the loopback",
            "provider (which checks each request's ACS3-HMAC-SHA256 signature) and one `celery worker -P solo`",
            "process. The burst commits all rows at once and counts messages/s from that commit to the last",
            "`sent`; the paced run creates rows at half that rate, so creation → sent is the outbox's own",
            "latency: the task through Redis, the claim and the signed request, up to recording the answer.",
            "(Before 231b1aa the loopback provider stalled each answer ~40 ms on Nagle's algorithm; the",
            "same script measured 16 messages/s then. That was the stand-in, not the outbox.)",
        ]) + "\n"
    start = text.index(SECTION)
    following = text.find("\n## ", start + len(SECTION))
    end = len(text) if following == -1 else following + 1
    entry = f"\n{command}\n\n{result}\n"
    text = text[:end].rstrip("\n") + "\n" + entry + ("\n" + text[end:] if following != -1 else "")
    RESULTS.write_text(text)


if __name__ == "__main__":
    main()

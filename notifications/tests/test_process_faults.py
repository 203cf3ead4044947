"""The outbox against real process faults: a Celery worker killed with SIGKILL in the
middle of a send, and the broker's Redis restarted (losing its queue) during a run.

Everything here is real: Celery worker subprocesses on the test database, a redis-server
of the test's own on a free port (never the machine's shared one), the loopback provider
over HTTP. The test process plays the sweeper (Celery beat calls the same function) and
waits on conditions with deadlines; the workers use real time.
"""

import os
import signal
import subprocess
import sys
import urllib.parse
from pathlib import Path

import pytest
import redis
from django.conf import settings as django_settings
from django.db import connection

from incidents.models import TimelineEvent
from notifications.channels import message_params
from notifications.outbox.receipts import voice_report_record
from notifications.outbox.rows import deliveries_cancel, delivery_create
from notifications.outbox.sweeper import deliveries_sweep
from notifications.models import Channel, Delivery
from tools.fakeprovider import FakeProvider
from warroom.celery import app as celery_app
from warroom.embedded_redis import EmbeddedRedis, free_port
from warroom.testing.waiting import wait_for

from . import factories
from .factories import M

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
CARD = "/v1.0/card/instances/createAndDeliver"
GROUP_CREATE = "/v1.0/im/sceneGroup/create"
DEADLINE = 120  # seconds: interpreters starting and SQLite writers queueing on a loaded 2-core machine
Status = Delivery.Status

# What the worker needs to reach the loopback provider, read by the settings block with env().
PROVIDER_SETTINGS = (
    "DINGTALK_API_BASE", "DINGTALK_OAPI_BASE", "ALIYUN_SMS_ENDPOINT", "ALIYUN_VOICE_ENDPOINT",
    "DINGTALK_APP_KEY", "DINGTALK_APP_SECRET", "DINGTALK_ROBOT_CODE", "DINGTALK_SCENE_TEMPLATE_ID",
    "DINGTALK_CARD_TEMPLATE_ID", "DINGTALK_CARD_CALLBACK_SECRET", "ALIYUN_ACCESS_KEY_ID",
    "ALIYUN_ACCESS_KEY_SECRET", "ALIYUN_SMS_SIGN_NAME", "ALIYUN_SMS_TEMPLATE_CODE", "ALIYUN_TTS_CODE",
    "ALIYUN_VOICE_SHOW_NUMBER", "ALIYUN_RECEIPT_SECRET",
)


def sweeping_until(condition, what, *, deadline=DEADLINE):
    """Run the sweeper, as beat does, until `condition` holds."""

    def swept():
        deliveries_sweep()
        return condition()

    return wait_for(swept, deadline, what, every=0.5)


def database_url() -> str:
    """The test database, as a URL a subprocess's settings understand."""
    s = connection.settings_dict
    if s["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{s['NAME']}"
    user = urllib.parse.quote(s.get("USER") or "")
    password = urllib.parse.quote(s.get("PASSWORD") or "")
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    return f"postgres://{auth}{s.get('HOST') or '127.0.0.1'}:{s.get('PORT') or 5432}/{s['NAME']}"


@pytest.fixture
def broker(tmp_path):
    """A redis-server of this test's own, as the broker of the workers and of this process."""
    redis = EmbeddedRedis(free_port(), tmp_path / "redis").start()
    previous = celery_app.conf.broker_url
    use_broker(redis.url)
    try:
        yield redis
    finally:
        use_broker(previous)
        redis.stop()


def use_broker(url: str) -> None:
    """Publish this process's tasks to `url`."""
    celery_app.conf.broker_url = url
    # Celery keeps a pool of broker connections (and producers on them) made from the URL it
    # saw first; forget them, as Celery itself does in a forked child.
    celery_app._after_fork()


@pytest.fixture
def workers(tmp_path, broker, providers, transactional_db):
    """Start Celery workers on the test database; every one is killed at the end, even on failure."""
    started: list[subprocess.Popen] = []
    logs = []

    def start(name: str, **overrides) -> subprocess.Popen:
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
        env.update({n: str(getattr(django_settings, n)) for n in PROVIDER_SETTINGS})
        env.update(
            DJANGO_SETTINGS_MODULE="warroom.settings",
            DATABASE_URL=database_url(),
            REDIS_URL=broker.url,
            WARROOM_DATA_DIR=str(tmp_path / "data"),
            PYTHONUNBUFFERED="1",
            NOTIFY_BACKOFF_BASE="1",
            NOTIFY_MAX_ATTEMPTS="4",
        )
        env.update({k: str(v) for k, v in overrides.items()})
        log_path = tmp_path / f"worker-{name}.log"
        log = open(log_path, "w+")
        logs.append((name, log_path, log))
        process = subprocess.Popen(
            [
                sys.executable, "-m", "celery", "-A", "warroom", "worker", "-l", "info",
                "-Q", "pages,messages,scheduler", "-c", "2", "-P", "prefork", "-n", f"{name}@%h",
                "--without-gossip", "--without-mingle", "--without-heartbeat",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            # Its own process group: SIGKILL reaches the pool's children too.
            start_new_session=True,
        )
        started.append(process)
        return process

    try:
        yield start
    finally:
        for process in started:
            kill(process)
        for name, log_path, log in logs:
            log.close()
            # Shown by pytest only when the test fails.
            print(f"--- worker {name} ---\n{log_path.read_text()[-4000:]}")


def kill(process: subprocess.Popen) -> None:
    """SIGKILL the worker and every process of its group: no chance to finish or acknowledge."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()

    def group_gone():
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            return True
        return False

    wait_for(group_gone, 30, f"every process of worker {process.pid} to exit")


def answered(record) -> bool:
    """The provider answered this request in time: not one it was told to hang on."""
    return record.status == 200 and record.injected != "timeout"


def outcomes(fault) -> list[str]:
    return list(TimelineEvent.objects.filter(fault=fault, kind="delivery.outcome").values_list("data__text", flat=True))


def test_a_worker_killed_mid_send_loses_nothing_and_repeats_only_what_the_provider_deduplicates(
    workers, providers, settings
):
    fake = providers
    # Requests told to hang keep hanging until the test ends: the worker is killed first.
    fake.config.hang_seconds = 600
    # The sweeper runs here: its retries, and its wait for an unconfirmed SMS's receipt, are short.
    settings.NOTIFY_BACKOFF_BASE = 1
    settings.NOTIFY_RECEIPT_WAIT_SECONDS = 2

    li = factories.person("Li Lei", methods=(M.ALIYUN_SMS, M.ALIYUN_VOICE))
    # The declaration writes the group's creation; the worker creates the group, which
    # posts the check-in card (keyed by outTrackId), and pages the commander by SMS
    # (no key: OutId only correlates receipts).
    fault = factories.fault(commander=li)
    fake.fail(CARD, "timeout")
    fake.fail("SendSms", "timeout")

    first = workers("first", NOTIFY_LEASE_SECONDS=3, NOTIFY_HTTP_READ_TIMEOUT=600)

    def both_in_flight():
        if first.poll() is not None:
            pytest.fail(f"the first worker exited with {first.returncode}")
        return fake.calls(CARD) and fake.calls("SendSms")

    wait_for(both_in_flight, DEADLINE, "the card and the SMS to reach the provider")
    kill(first)

    card = Delivery.objects.get(fault=fault, channel=Channel.DINGTALK_CARD)
    sms = Delivery.objects.get(fault=fault, channel=Channel.ALIYUN_SMS)
    # What a killed worker leaves behind: claimed, the request gone out, no answer recorded.
    for d in (card, sms):
        assert d.status == Status.SENDING and d.dispatched_at is not None and d.attempts == 1, d.__dict__
    assert fake.calls(CARD)[0].json["outTrackId"] == card.provider_key
    assert fake.calls("SendSms")[0].query["OutId"] == sms.provider_key

    workers("second", NOTIFY_LEASE_SECONDS=60, NOTIFY_HTTP_READ_TIMEOUT=10)

    # The leases run out; the sweeper reclaims both rows. The card goes again with the same
    # outTrackId; the SMS is never sent again, it waits for a receipt that will not come,
    # and the commander is called on his next paging method instead.
    def voice_call_out():
        card.refresh_from_db()
        voice = Delivery.objects.filter(fault=fault, channel=Channel.ALIYUN_VOICE).first()
        return card.status == Status.DELIVERED and voice is not None and voice.status == Status.SENT and voice

    voice = sweeping_until(voice_call_out, "the card to be delivered and the voice call to be placed")
    assert voice_report_record(FakeProvider.voice_report(voice.provider_key)) is True

    card.refresh_from_db()
    sms.refresh_from_db()
    voice.refresh_from_db()
    group_create = Delivery.objects.get(fault=fault, channel=Channel.DINGTALK_GROUP_CREATE)
    assert group_create.status == Status.DELIVERED
    assert card.status == Status.DELIVERED and card.attempts == 2
    assert sms.status == Status.FAILED and sms.unconfirmed and sms.attempts == 1
    assert voice.status == Status.DELIVERED and voice.method_index == 1
    assert not Delivery.objects.filter(fault=fault).exclude(status__in=Delivery.FINAL_STATUSES).exists()

    # At the provider: one card for the outTrackId (the first request made it and is still
    # hanging; the retry is told it already exists), the group's uuid once, and the SMS
    # sent once, never again.
    card_requests = [r for r in fake.calls(CARD) if r.json["outTrackId"] == card.provider_key]
    assert len(card_requests) == 2
    assert [r.json["outTrackId"] for r in fake.accepted(CARD)] == [card.provider_key]
    assert [answered(r) for r in fake.calls(GROUP_CREATE)] == [True]
    assert [r.query["OutId"] for r in fake.calls("SendSms")] == [sms.provider_key]
    assert [r.query["OutId"] for r in fake.calls("SingleCallByTts")] == [voice.provider_key]
    assert sum(map(answered, fake.calls("SingleCallByTts"))) == 1

    timeline = outcomes(fault)
    assert [t for t in timeline if t.startswith("Check-in card")] == [
        "Check-in card to the group failed (the worker stopped while sending); retrying in 0 s",
        "Check-in card to the group delivered",
    ]
    assert [t for t in timeline if t.startswith(("SMS", "Voice"))] == [
        "SMS to Li Lei unconfirmed: the worker stopped while sending; waiting for its receipt",
        "SMS to Li Lei unconfirmed: no receipt came",
        "Voice call to Li Lei sent",
        "Voice call to Li Lei answered",
    ]


def test_a_redis_restart_that_loses_the_queue_delays_messages_but_delivers_each_once(
    workers, broker, providers, settings
):
    fake = providers
    n = 20
    # A slow provider, so that the run is still going when Redis goes: every SendSms is
    # answered after 0.3 s, well within the worker's read timeout.
    fake.config.hang_seconds = 0.3
    fake.fail("SendSms", "timeout", times=n)

    fault = factories.fault()
    deliveries_cancel(fault=fault, reason="not under test")  # its group: nobody to put in it
    people = [factories.person(f"Person {i}", methods=(M.ALIYUN_SMS,)) for i in range(n)]
    rows = [
        delivery_create(
            fault=fault, channel=Channel.ALIYUN_SMS, person=p, subject="P1", body="Checkout fails",
            payload={"params": message_params(fault)}, idempotency_key=f"restart:{p.pk}",
        )
        for p in people
    ]
    keys = {d.provider_key for d in rows}
    sms = Delivery.objects.filter(pk__in=[d.pk for d in rows])

    workers("worker", NOTIFY_LEASE_SECONDS=60, NOTIFY_HTTP_READ_TIMEOUT=10)
    wait_for(lambda: sms.filter(status=Status.SENT).count() >= 3, DEADLINE, "the first messages to go out")

    broker.stop()
    left = sms.filter(status=Status.PENDING).count()
    assert left > 0, "the run was over before Redis stopped"
    broker.start()
    # Redis came back empty (no persistence): what was queued is gone.
    assert redis.Redis.from_url(broker.url).llen("celery") == 0

    sweeping_until(lambda: sms.filter(status=Status.SENT).count() == n, f"all {n} messages to be sent")

    assert sms.filter(unconfirmed=True).count() == 0
    sent_keys = [r.query["OutId"] for r in fake.calls("SendSms")]
    assert sorted(sent_keys) == sorted(keys), "each message exactly once at the provider"
    assert all(r.status == 200 and r.answer["Code"] == "OK" for r in fake.calls("SendSms"))
    assert outcomes(fault).count("SMS to Person 0 sent") == 1
    assert len([t for t in outcomes(fault) if t.endswith(" sent")]) == n

"""Fault injection with real processes: a provider outage (5xx, then timeouts) while workers
are killed with SIGKILL mid-burst, the broker's Redis is killed and restarted, and, on
PostgreSQL, the workers' database connections are terminated.

Everything runs for real: Celery workers consuming all three queues (pages, messages,
scheduler) and the scheduler played by a real `celery beat` process, all on the test
database and a redis-server of the test's own (never the machine's shared Redis), sending
to the loopback provider over HTTP. The test process plays the world around the product:
it declares and resolves the faults through the services, the provider's receipts come
back through the product's receipt functions, and people check in (from the card or the
API) once a page of theirs reached the provider; some emergency contacts never do. It also
plays the process manager production runs workers under: a worker that exits by itself is
started again, and the figures say why it exited.

At the end every request the provider accepted is counted against the outbox: nothing
lost, nothing doubled, no row left waiting, no page after resolution, nobody replaced or
escalated for a silence the outage caused, every notification round delivered once the
outage is over, and the outage and the recovery on the faults' timelines.

The size comes from FAULT_INJECTION_SCALE: `ci` (the default, a 20 s 5xx phase then 20 s of
timeouts, five faults) or `full` (two minutes of each, more faults, more kills; run by
`make fault-injection`). The figures (messages, requests, drain time after the outage,
lateness of deadlines during it) are printed as one JSON line and, when
FAULT_INJECTION_FIGURES names a file, written there for bench/outage.py. Tests never
assert timings; the figures are where they live.
"""

import json
import os
import statistics
import subprocess
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.db.models import Q
from django.utils import timezone

from incidents import services
from incidents.errors import InvalidInput
from incidents.event_types import EventKind
from incidents.models import Fault, Level, RoleAssignment, SLAPolicy, TimelineEvent
from notifications.models import RECEIPT_CHANNELS, Channel, CollaborationGroup, Delivery, Engagement
from notifications.outbox.receipts import sms_report_record, voice_report_record
from notifications.response.group import card_check_in
from roster.models import Business, CandidateKind, NotificationGroup, Person
from roster.tests.factories import commander_rule
from tools.fakeprovider import FakeProvider
from warroom.testing.waiting import wait_for

from . import factories
from .factories import M
from .test_process_faults import ROOT, broker, database_url, kill, workers  # noqa: F401  (fixtures)


@dataclass(frozen=True)
class Size:
    faults: int  # declared in one burst during the outage (plus one already under way)
    workers: int  # Celery workers running at any time, each `-c 2`
    five_xx: float  # seconds of HTTP 503 from every provider
    hang: float  # then seconds of requests held past the read timeout
    redis_down: float  # seconds the broker's redis-server stays dead
    kills: tuple  # when a worker is killed: "burst", "5xx", "hang", "drain"
    check_in_within: timedelta  # the P1 check-in SLA: shorter than the outage, so a wrong replacement shows
    renotify_every: timedelta  # notification rounds fall due during the outage
    deadline: float  # seconds any one wait may take


SIZES = {
    "ci": Size(
        faults=5, workers=2, five_xx=20, hang=20, redis_down=3, kills=("burst", "drain"),
        check_in_within=timedelta(seconds=15), renotify_every=timedelta(seconds=15), deadline=150,
    ),
    "full": Size(
        faults=14, workers=3, five_xx=120, hang=120, redis_down=5, kills=("burst", "5xx", "hang", "drain"),
        check_in_within=timedelta(seconds=60), renotify_every=timedelta(seconds=60), deadline=600,
    ),
}
SCALE = os.environ.get("FAULT_INJECTION_SCALE", "ci")
SIZE = SIZES[SCALE]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(900 if SCALE == "ci" else 3000),
]

# The product's settings, for the worker and beat processes and for this process (which
# declares the faults and records receipts and check-ins): short backoff, timeouts and
# scheduler periods, so that minutes of production behaviour fit in the drill.
PRODUCT_SETTINGS = {
    "NOTIFY_BACKOFF_BASE": 1,
    "NOTIFY_BACKOFF_MAX": 5,
    "NOTIFY_HTTP_READ_TIMEOUT": 1,
    "NOTIFY_SEND_BUDGET": 3,
    "NOTIFY_MAX_ATTEMPTS": 3,
    "NOTIFY_OUTAGE_AFTER": 3,
    "NOTIFY_OUTAGE_PROBE_EVERY": 2,
    "NOTIFY_RECEIPT_WAIT_SECONDS": 3,
    # Longer than a send's budget plus a wait for SQLite's write lock; short enough that the
    # rows of a killed worker are reclaimed within the drill.
    "NOTIFY_LEASE_SECONDS": 15,
    "NOTIFY_SWEEP_EVERY": 1,
    "NOTIFY_FOLLOW_UP_EVERY": 1,
}

Status = Delivery.Status
Role = RoleAssignment.Role
TOKEN = "/v1.0/oauth2/accessToken"
DING = "/v1.0/robot/ding/send"
CARD = "/v1.0/card/instances/createAndDeliver"
GROUP_CREATE = "/v1.0/im/sceneGroup/create"
MEMBER_ADD = "/v1.0/im/sceneGroup/member/add"
GROUP_MESSAGE = "/v1.0/robot/groupMessages/send"
REMIND_CHANNELS = {1: Channel.DINGTALK_DING_APP, 2: Channel.DINGTALK_DING_SMS, 3: Channel.DINGTALK_DING_PHONE}
KEYED_BY_PROVIDER_KEY = {Channel.ALIYUN_SMS, Channel.ALIYUN_VOICE, Channel.DINGTALK_CARD, Channel.DINGTALK_ROBOT}
CONFIRMED = (Status.SENT, Status.DELIVERED)


# --- which message a request carries -------------------------------------------------------


def request_key(r) -> tuple | None:
    """What identifies the message an accepted request carried; None for a token request.

    The key the product sends where there is one (OutId, outTrackId, the group's uuid, the
    robot's msgUuid); DING and the app robot's group messages have none, so they are known
    by receiver and content.
    """
    body = r.json if isinstance(r.json, dict) else {}
    if r.api == TOKEN:
        return None
    if r.api == "SendSms":
        return (Channel.ALIYUN_SMS, r.query.get("OutId"))
    if r.api == "SingleCallByTts":
        return (Channel.ALIYUN_VOICE, r.query.get("OutId"))
    if r.api == CARD:
        return (Channel.DINGTALK_CARD, body.get("outTrackId"))
    if r.api == "robot/send":
        return (Channel.DINGTALK_ROBOT, body.get("msgUuid"))
    if r.api == GROUP_CREATE:
        return (Channel.DINGTALK_GROUP_CREATE, body.get("uuid"))
    if r.api == MEMBER_ADD:
        return (Channel.DINGTALK_GROUP_MEMBER_ADD, body.get("open_conversation_id"), body.get("user_ids"))
    if r.api == DING:
        receivers = tuple(body.get("receiverUserIdList") or ())
        return (REMIND_CHANNELS.get(body.get("remindType")), receivers, body.get("content"))
    if r.api == GROUP_MESSAGE:
        param = json.loads(body.get("msgParam") or "{}")
        return (Channel.DINGTALK_GROUP_MESSAGE, body.get("openConversationId"), param.get("title"), param.get("text"))
    return ("unknown", r.api)


def row_key(d: Delivery) -> tuple:
    """The same identity, from the outbox row's side."""
    if d.channel in KEYED_BY_PROVIDER_KEY:
        return (d.channel, d.provider_key)
    if d.channel == Channel.DINGTALK_GROUP_CREATE:
        return (d.channel, d.group.uuid)
    if d.channel == Channel.DINGTALK_GROUP_MEMBER_ADD:
        return (d.channel, d.target, d.person.dingtalk_user_id)
    if d.channel in REMIND_CHANNELS.values():
        return (d.channel, (d.person.dingtalk_user_id,), d.body)
    if d.channel == Channel.DINGTALK_GROUP_MESSAGE:
        return (d.channel, d.target, d.subject, d.body)
    return (d.channel, d.idempotency_key)


def outbox_rows() -> list[Delivery]:
    return list(Delivery.objects.select_related("person", "group").order_by("pk"))


def is_final(d: Delivery) -> bool:
    """Delivered, failed, cancelled, or sent with nothing more to wait for (no receipt to come)."""
    if d.status in Delivery.FINAL_STATUSES:
        return True
    return d.status == Status.SENT and d.channel not in RECEIPT_CHANNELS and d.receipt_due_at is None


def waiting_rows():
    """The rows that are not final, in the database."""
    nothing_to_wait_for = Q(status=Status.SENT, receipt_due_at__isnull=True) & ~Q(channel__in=RECEIPT_CHANNELS)
    return Delivery.objects.exclude(status__in=Delivery.FINAL_STATUSES).exclude(nothing_to_wait_for)


def done_at(d: Delivery):
    """When the row was sent, or else ended (failed, cancelled); None while it is still to go."""
    return d.sent_at or d.finished_at


def describe(d: Delivery) -> dict:
    return {
        "delivery": d.pk, "fault": d.fault_id, "key": d.idempotency_key, "channel": d.channel, "status": d.status,
        "unconfirmed": d.unconfirmed, "attempts": d.attempts, "error": d.last_error[:160],
    }


def spread(values) -> dict:
    values = sorted(values)
    if not values:
        return {"n": 0}
    return {"n": len(values), "p50": round(statistics.median(values), 2), "max": round(values[-1], 2)}


# --- the world around the product ------------------------------------------------------------


def world(size: Size) -> list[tuple[Business, Person, Person]]:
    """The roster: one business per fault with its own handler, emergency contact, two
    notification recipients and two notification groups; one commander rule for P1 whose
    second candidate would take over from a commander wrongly thought absent.

    Returns (business, fault handler, emergency contact) for each fault.
    """
    li = factories.person("Li Lei", methods=(M.DINGTALK_DING_PHONE, M.ALIYUN_VOICE, M.ALIYUN_SMS))
    sun = factories.person("Sun Qi", methods=(M.DINGTALK_DING_PHONE, M.ALIYUN_VOICE, M.ALIYUN_SMS))
    commander_rule(1, {"kind": CandidateKind.PERSON, "person": li}, {"kind": CandidateKind.PERSON, "person": sun})
    SLAPolicy.objects.update_or_create(level=Level.P1, defaults={
        "notify_within": timedelta(minutes=5),
        "check_in_within": size.check_in_within,
        "task_response_within": timedelta(minutes=15),
        "progress_update_every": timedelta(hours=1),
        "renotify_every": size.renotify_every,
    })
    businesses = []
    for i in range(size.faults + 1):
        handler = factories.person(f"Handler {i}", methods=(M.DINGTALK_DING_PHONE, M.ALIYUN_VOICE, M.ALIYUN_SMS))
        contact = factories.person(f"Contact {i}", methods=(M.ALIYUN_VOICE, M.DINGTALK_DING_PHONE, M.ALIYUN_SMS))
        business = Business.objects.create(name=f"Region {i}", slug=f"region-{i}", stability_contact=contact)
        # One hears by SMS, the other by DING in the app: each one's first writing method.
        business.notification_recipients.set([
            factories.person(f"Reader {i}a", methods=(M.DINGTALK_DING_PHONE, M.ALIYUN_SMS)),
            factories.person(f"Reader {i}b", methods=(M.DINGTALK_DING_APP, M.ALIYUN_VOICE)),
        ])
        business.notification_groups.set([
            NotificationGroup.objects.create(name=f"Region {i} watchers", open_conversation_id=f"cidRegion{i}=="),
            NotificationGroup.objects.create(
                name=f"Region {i} robot", kind=NotificationGroup.Kind.DINGTALK_ROBOT_WEBHOOK,
                webhook_url="https://oapi.dingtalk.com/robot/send?access_token=fake-robot-token",
                webhook_secret="fake-robot-secret",
            ),
        ])
        businesses.append((business, handler, contact))
    return businesses


def declare(business, handler) -> Fault:
    return services.fault_declare(
        title=f"Checkout fails in {business.name}", level=Level.P1, impact="Payments fail",
        affected_business=business, fault_handler=handler,
    )


class Drill:
    """The scenario's state, and what the world does while the product runs."""

    def __init__(self, *, fake: FakeProvider, start_worker, broker, size: Size, logs: Path):
        self.fake, self.start_worker, self.broker, self.size, self.logs = fake, start_worker, broker, size, logs
        self.alive: list[tuple[str, subprocess.Popen]] = []
        self.started = 0
        self.silent: set[int] = set()  # contacts who never check in
        self.cursor = 0  # requests before it have been looked at
        self.index: dict[tuple, list[Delivery]] = {}
        self.receipts_due: list = []  # accepted SMS and calls whose receipt is still to come
        self.reached: set[tuple[int, int]] = set()  # (fault, person) a page got through to
        self.checked_in: set[tuple[int, int]] = set()
        self.cards: dict[int, str] = {}  # fault → outTrackId of its card in the group
        self.marks: dict = {}  # moments, on the product's clock
        self.at_resolution: dict[int, tuple[int, set[int]]] = {}  # fault → (requests so far, page rows sending)
        self.figures: dict = {"scale": SCALE, "kills": [], "database": connection.vendor}
        self.began = time.monotonic()

    # --- processes ------------------------------------------------------------------------

    def worker(self) -> None:
        self.started += 1
        name = f"w{self.started}"
        process = self.start_worker(name, **PRODUCT_SETTINGS)
        self.alive.append((name, process))

    def replace_exited_workers(self) -> None:
        """Start a worker again in place of one that exited by itself, as the process manager
        that production runs workers under does; what made it exit goes into the figures."""
        for name, process in list(self.alive):
            if process.poll() is None:
                continue
            self.alive.remove((name, process))
            log = (self.logs / f"worker-{name}.log").read_text(errors="replace").splitlines()
            fatal = [line for line in log if "CRITICAL" in line or "Unrecoverable" in line]
            self.figures.setdefault("workers_exited_by_themselves", []).append(
                {"worker": name, "exit_code": process.returncode, "why": fatal[-1][:300] if fatal else log[-1:]}
            )
            self.worker()

    def kill_a_worker(self, moment: str) -> None:
        """SIGKILL the oldest worker, whatever it is doing, and start another in its place."""
        _, victim = self.alive.pop(0)
        busy = {
            "pending": Delivery.objects.filter(status=Status.PENDING).count(),
            "sending": Delivery.objects.filter(status=Status.SENDING).count(),
        }
        kill(victim)
        self.figures["kills"].append({"moment": moment, **busy})
        self.worker()

    def restart_redis(self) -> None:
        """SIGKILL the broker's redis-server (it keeps nothing on disk), then start it again."""
        self.broker.process.kill()
        self.broker.process.wait()
        self.run_for(self.size.redis_down, "the broker's Redis to stay down")
        self.broker.start()
        self.figures["redis_restarts"] = self.figures.get("redis_restarts", 0) + 1

    def terminate_database_connections(self) -> None:
        """On PostgreSQL, end every other backend of the test database: the workers' connections
        (at least one; a worker between two tasks may hold none at that instant)."""

        def terminated():
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT backend_type, state, pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
                ended = [row[:2] for row in cursor.fetchall() if row[2]]
            self.figures.setdefault("db_connections_terminated", []).extend(ended)
            return ended

        self.until(terminated, "a worker's database connection to be ended")

    # --- waiting, while the world goes on -----------------------------------------------------

    def until(self, condition, what: str, deadline: float | None = None):
        def step():
            self.tick()
            return condition()

        return wait_for(step, deadline or self.size.deadline, what, every=0.5)

    def run_for(self, seconds: float, what: str) -> None:
        """Let `seconds` of the scenario pass (an outage phase, Redis down) with the world going on."""
        end = time.monotonic() + seconds
        self.until(lambda: time.monotonic() >= end, what, deadline=seconds + self.size.deadline)

    def tick(self) -> None:
        """The provider pushes its receipts and people check in, as they would in the meantime."""
        self.replace_exited_workers()
        self._look_at_new_requests()
        self._push_receipts()
        self._check_people_in()

    def rows(self, key: tuple) -> list[Delivery]:
        if key not in self.index:
            self.index = defaultdict(list)
            for d in outbox_rows():
                self.index[row_key(d)].append(d)
        return self.index.get(key, [])

    def _look_at_new_requests(self) -> None:
        records = self.fake.calls()
        # In arrival order; one held by a hanging provider is looked at once it has been answered.
        while self.cursor < len(records) and records[self.cursor].finished.is_set():
            r = records[self.cursor]
            self.cursor += 1
            key = request_key(r)
            if not r.accepted or key is None:
                continue
            if r.api in ("SendSms", "SingleCallByTts"):
                self.receipts_due.append(r)
            for d in self.rows(key):
                if d.purpose == Delivery.Purpose.PAGE:
                    self.reached.add((d.fault_id, d.person_id))
                if d.channel == Channel.DINGTALK_CARD:
                    self.cards[d.fault_id] = d.provider_key

    def _push_receipts(self) -> None:
        # A receipt comes seconds after the send, once the worker has recorded the provider's answer.
        later = []
        for r in self.receipts_due:
            out_id = r.query["OutId"]
            if Delivery.objects.filter(provider_key=out_id, status=Status.SENDING).exists():
                later.append(r)
            elif r.api == "SendSms":
                sms_report_record(FakeProvider.sms_report(out_id, r.query.get("PhoneNumbers", "")))
            else:
                voice_report_record(FakeProvider.voice_report(out_id))
        self.receipts_due = later

    def _check_people_in(self) -> None:
        for fault_id, person_id in sorted(self.reached - self.checked_in):
            if person_id in self.silent:
                continue
            fault = Fault.objects.get(pk=fault_id)
            if not fault.is_open:
                continue
            person = Person.objects.get(pk=person_id)
            commands = RoleAssignment.objects.filter(
                fault=fault, person=person, role=Role.COMMANDER, ended_at__isnull=True
            ).exists()
            try:
                if commands and fault_id in self.cards:
                    card_check_in(out_track_id=self.cards[fault_id], user_id=person.dingtalk_user_id)
                else:
                    services.role_check_in(fault=fault, person=person, via="api")
            except InvalidInput:
                continue  # an emergency contact the product has not made a handler yet
            self.checked_in.add((fault_id, person_id))

    # --- the end of the story ----------------------------------------------------------------

    def resolve(self, fault: Fault) -> None:
        requests_before = len(self.fake.calls())
        services.fault_mark_recovered(fault=fault)
        # Pages already on their way when the resolution committed may still arrive; no other may.
        in_flight = set(
            Delivery.objects.filter(fault=fault, purpose=Delivery.Purpose.PAGE, status=Status.SENDING)
            .values_list("pk", flat=True)
        )
        self.at_resolution[fault.pk] = (requests_before, in_flight)


# --- the checks --------------------------------------------------------------------------------


def accepted_requests(records) -> Counter:
    """How many requests the provider took, per message."""
    return Counter(k for r in records if r.accepted and (k := request_key(r)) is not None)


def count_against_the_outbox(accepted: Counter, rows: list[Delivery]) -> dict:
    """Every request the provider accepted against the outbox's rows: lost, doubled, unknown."""
    by_key = defaultdict(list)
    for d in rows:
        by_key[row_key(d)].append(d)
    lost, doubled = [], []
    for key, ds in by_key.items():
        n = accepted.get(key, 0)
        confirmed = [d for d in ds if d.status in CONFIRMED and not d.unconfirmed]
        # Rows that may have left: sent, or an attempt whose answer never came. A later page
        # cycle or notification round is a row of its own; only more requests than rows is a double.
        may_have_left = [d for d in ds if d.sent_at is not None]
        if n < len(confirmed):
            lost += [describe(d) for d in confirmed[n:]]
        # Adding someone to a group twice changes nothing: the product may repeat it.
        if n > len(may_have_left) and key[0] != Channel.DINGTALK_GROUP_MEMBER_ADD:
            doubled.append({"key": repr(key)[:200], "requests": n, "rows": [describe(d) for d in ds]})
    unknown = [{"key": repr(k)[:200], "requests": n} for k, n in accepted.items() if k not in by_key]
    return {"lost": lost, "doubled": doubled, "requests_for_no_row": unknown}


def pages_after_resolution(drill: Drill, records, rows_by_key) -> tuple[list, int]:
    """Page requests that reached the provider after their fault was resolved, and had not
    been on their way already; and how many were on their way (allowed)."""
    late, in_flight = [], 0
    for index, r in enumerate(records):
        key = request_key(r)
        if key is None:
            continue
        for d in rows_by_key.get(key, []):
            if d.purpose != Delivery.Purpose.PAGE or d.fault_id not in drill.at_resolution:
                continue
            requests_before, sending = drill.at_resolution[d.fault_id]
            if index < requests_before:
                continue
            if d.pk in sending:
                in_flight += 1
            else:
                late.append({"request": index, "api": r.api, **describe(d)})
    return late, in_flight


def silences_we_caused(drill: Drill, sla: timedelta) -> tuple[list, list, list]:
    """Check-in breaches before the person's page had got through for the SLA's length; the
    commanders the product replaced while the outage lasted; and how late legitimate breaches came."""
    wrong, lateness = [], []
    for e in TimelineEvent.objects.filter(kind=EventKind.SLA_BREACHED).order_by("created_at"):
        if e.data.get("what") != "check_in":
            continue
        person = e.data["person"]["id"]
        reached = (
            Delivery.objects.filter(
                fault_id=e.fault_id, person_id=person, purpose=Delivery.Purpose.PAGE, sent_at__isnull=False,
                unconfirmed=False,
            ).order_by("sent_at").values_list("sent_at", flat=True).first()
        )
        if reached is None or e.created_at < reached + sla:
            wrong.append({
                "fault": e.fault_id, "text": e.data.get("text"), "at": e.created_at.isoformat(),
                "page_got_through_at": reached.isoformat() if reached else None,
                "successor": e.data.get("successor"),
            })
        else:
            lateness.append((e.created_at - (reached + sla)).total_seconds())
    started, ended = drill.marks["outage_started"], drill.marks["outage_ended"]
    replaced = [
        {"fault": e.fault_id, "at": e.created_at.isoformat(), "new": e.data["person"], "replaced": e.data["replaced"]}
        for e in TimelineEvent.objects.filter(kind=EventKind.ROLE_ASSIGNED, actor__isnull=True).order_by("created_at")
        if e.data.get("role") == Role.COMMANDER and e.data.get("replaced") and started <= e.created_at <= ended
    ]
    return wrong, replaced, lateness


def rounds_not_delivered(drill: Drill, rows: list[Delivery], accepted: Counter) -> list:
    """Every notification round (recipients and groups) that fell due was delivered; only a
    round that fell due after the outage may have been cancelled by the resolution.

    Delivered: the product says so, or the provider took it (a worker killed after the
    request left leaves the row unconfirmed, though the message went out).
    """
    missing = []
    for d in rows:
        if ":notify:" not in d.idempotency_key:
            continue
        if (d.status in CONFIRMED and not d.unconfirmed) or accepted[row_key(d)]:
            continue
        if d.status == Status.CANCELLED and d.created_at >= drill.marks["outage_ended"]:
            continue
        missing.append(describe(d))
    return missing


def lateness_figures(drill: Drill, rows: list[Delivery], renotify: timedelta) -> dict:
    """How late follow-up steps were taken against when they were due, during the outage and after."""
    started, ended = drill.marks["outage_started"], drill.marks["outage_ended"]

    def split(pairs):  # (due, taken)
        during = [(t - due).total_seconds() for due, t in pairs if started <= due <= ended]
        after = [(t - due).total_seconds() for due, t in pairs if due > ended]
        return {"during_outage": spread(during), "after_outage": spread(after)}

    # An emergency contact is due for his role (so that he can check in) the moment he is pulled in.
    contacts = Engagement.objects.filter(reason__startswith="emergency contact")
    opened = {(e.fault_id, e.person_id): e.created_at for e in contacts}
    roles = [
        (opened[(e.fault_id, e.data["person"]["id"])], e.created_at)
        for e in TimelineEvent.objects.filter(kind=EventKind.ROLE_ASSIGNED, actor__isnull=True)
        if e.data.get("role") == Role.EMERGENCY_HANDLER and (e.fault_id, e.data["person"]["id"]) in opened
    ]
    # Round n+1 falls due `renotify_every` after round n was taken (keys: fault:<id>:notify:<n>:…).
    taken: dict[tuple[int, int], object] = {}
    for d in rows:
        parts = d.idempotency_key.split(":")
        if len(parts) > 3 and parts[2] == "notify" and parts[3].isdigit():
            key = (d.fault_id, int(parts[3]))
            taken[key] = min(taken.get(key, d.created_at), d.created_at)
    rounds = [(taken[(f, n - 1)] + renotify, at) for (f, n), at in taken.items() if (f, n - 1) in taken]
    return {"contact_given_a_role": split(roles), "renotify_round": split(rounds)}


# --- the drill ------------------------------------------------------------------------------------


@pytest.fixture
def beat(tmp_path, broker, transactional_db):  # noqa: F811  (broker is a fixture)
    """`celery beat`, the product's scheduler: it queues the sweeper and the follow-ups every second."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(
        DJANGO_SETTINGS_MODULE="warroom.settings", DATABASE_URL=database_url(), REDIS_URL=broker.url,
        WARROOM_DATA_DIR=str(tmp_path / "data"), PYTHONUNBUFFERED="1",
        **{k: str(v) for k, v in PRODUCT_SETTINGS.items()},
    )
    log_path = tmp_path / "beat.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "warroom", "beat", "-l", "info",
             "-s", str(tmp_path / "beat-schedule")],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        yield process
    finally:
        kill(process)
        print(f"--- beat ---\n{log_path.read_text()[-3000:]}")


def play(drill: Drill, size: Size) -> list[Fault]:
    """The scenario, from a fault under way before the outage to every row final after it."""
    businesses = world(size)
    for _ in range(size.workers):
        drill.worker()

    # A fault already under way when the provider goes down: its people were reached and
    # checked in, and the DingTalk token the workers share is in the cache.
    (first, handler, _), *rest = businesses
    under_way = declare(first, handler)
    drill.until(
        lambda: not Engagement.objects.filter(fault=under_way, ended_at__isnull=True).exists()
        and not Delivery.objects.filter(fault=under_way, status__in=(Status.PENDING, Status.SENDING)).exists(),
        "everyone of the fault under way to check in",
    )
    drill.figures["warm_up_seconds"] = round(time.monotonic() - drill.began, 1)

    # The outage: first every provider answers 503, then holds every request past the read
    # timeout. The faults declared now are paged into it; every other contact stays silent.
    drill.fake.outage("5xx")
    drill.marks["outage_started"] = timezone.now()
    began = time.monotonic()
    drill.silent = {contact.pk for _, _, contact in rest[::2]}
    burst = [declare(business, handler) for business, handler, _ in rest]
    if "burst" in size.kills:
        drill.until(
            lambda: Delivery.objects.filter(fault__in=burst, attempts__gt=0).count() >= 3
            and Delivery.objects.filter(fault__in=burst, status=Status.PENDING).exists(),
            "the burst of first attempts to be under way",
        )
        drill.kill_a_worker("burst")
    if "5xx" in size.kills:
        drill.run_for(size.five_xx * 0.6 - (time.monotonic() - began), "the 5xx phase to go on")
        drill.kill_a_worker("5xx")
    drill.run_for(size.five_xx - (time.monotonic() - began), "the 5xx phase to run its course")

    drill.fake.outage("hang")
    began = time.monotonic()
    # SQLite has no server-side connections to end: every process opens the file itself.
    if connection.vendor == "postgresql":
        drill.terminate_database_connections()
    if "hang" in size.kills:
        drill.until(
            lambda: Delivery.objects.filter(status=Status.SENDING, dispatched_at__isnull=False).exists(),
            "a worker to be waiting for the hanging provider",
        )
        drill.kill_a_worker("hang")
    # Halfway through: the token the workers share is in this Redis, and goes with it.
    drill.run_for(size.hang / 2 - (time.monotonic() - began), "the first half of the timeouts")
    drill.restart_redis()
    drill.run_for(size.hang - (time.monotonic() - began), "the timeouts to run their course")

    drill.fake.outage(None)
    drill.marks["outage_ended"] = ended = timezone.now()
    began = time.monotonic()
    requests_so_far = len(drill.fake.calls())
    if "drain" in size.kills:
        drill.until(
            lambda: any(r.accepted for r in drill.fake.calls()[requests_so_far:]), "the backlog to start going out"
        )
        drill.kill_a_worker("drain")
    backlog = Delivery.objects.filter(created_at__lt=ended, status__in=(Status.PENDING, Status.SENDING))
    drill.until(lambda: not backlog.exists(), "the backlog the outage left to drain")
    drill.figures["drain_seconds"] = round(time.monotonic() - began, 1)
    drill.until(
        lambda: not Engagement.objects.filter(ended_at__isnull=True).exclude(person_id__in=drill.silent).exists(),
        "everyone but the silent contacts to check in",
    )
    drill.figures["all_checked_in_seconds"] = round(time.monotonic() - began, 1)

    faults = [under_way, *burst]
    for fault in faults:
        drill.resolve(fault)
    drill.until(
        lambda: not waiting_rows().exists() and not drill.receipts_due and drill.cursor == len(drill.fake.calls()),
        "every row to reach a final state",
    )
    drill.figures["settled_seconds_after_outage"] = round(time.monotonic() - began, 1)
    return faults


def check(drill: Drill, faults: list[Fault], size: Size) -> dict:
    """What must not have happened, each with the rows or events that show it; and the figures."""
    records, rows = drill.fake.calls(), outbox_rows()
    rows_by_key = defaultdict(list)
    for d in rows:
        rows_by_key[row_key(d)].append(d)
    accepted = accepted_requests(records)
    counted = count_against_the_outbox(accepted, rows)
    late_pages, in_flight = pages_after_resolution(drill, records, rows_by_key)
    wrong_breaches, replaced, breach_lateness = silences_we_caused(drill, size.check_in_within)
    missing = {
        kind: [f.pk for f in faults if not TimelineEvent.objects.filter(fault=f, kind=kind).exists()]
        for kind in (EventKind.PROVIDER_OUTAGE, EventKind.PROVIDER_RECOVERED)
    }
    problems = {
        "lost": counted["lost"],
        "doubled": counted["doubled"],
        "requests_for_no_row": counted["requests_for_no_row"],
        "rows_not_final": [describe(d) for d in rows if not is_final(d)],
        "pages_after_resolution": late_pages,
        "breached_for_a_silence_the_outage_caused": wrong_breaches,
        "commanders_replaced_during_the_outage": replaced,
        "notification_rounds_not_delivered": rounds_not_delivered(drill, rows, accepted),
        "faults_without_the_outage_on_their_timeline": missing[EventKind.PROVIDER_OUTAGE],
        "faults_without_the_recovery_on_their_timeline": missing[EventKind.PROVIDER_RECOVERED],
    }
    ended = drill.marks["outage_ended"]
    drill.figures.update({
        "faults": len(faults),
        "people": Person.objects.count(),
        "workers_started": drill.started,
        "outage_seconds": {"5xx": size.five_xx, "hang": size.hang},
        "messages": {
            "rows": len(rows),
            "pages": sum(d.purpose == Delivery.Purpose.PAGE for d in rows),
            "by_status": dict(sorted(Counter(d.status for d in rows).items())),
            "unconfirmed": sum(d.unconfirmed for d in rows),
            "groups_created": CollaborationGroup.objects.exclude(open_conversation_id="").count(),
        },
        "requests": {
            "total": len(records),
            "accepted": sum(r.accepted for r in records if r.api != TOKEN),
            "answered_by_the_outage": sum(bool(r.outage) for r in records),
            "tokens_issued": sum(r.accepted for r in records if r.api == TOKEN),
        },
        "pages_in_flight_at_resolution": in_flight,
        # What the drain waited for: the rows of the backlog that went out (or ended) last.
        "last_of_the_backlog": [
            {"channel": d.channel, "purpose": d.purpose, "status": d.status, "attempts": d.attempts,
             "seconds_after_the_outage": round((done_at(d) - ended).total_seconds(), 1)}
            for d in sorted((d for d in rows if d.created_at < ended and done_at(d)), key=done_at)[-3:]
        ],
        "lateness_seconds": {
            **lateness_figures(drill, rows, size.renotify_every),
            "check_in_breach_after_the_page_got_through": spread(breach_lateness),
        },
        "outage": {name: at.isoformat() for name, at in drill.marks.items()},
        "counts": {name: len(found) for name, found in problems.items()},
    })
    return problems


def test_an_outage_with_killed_workers_redis_and_connections_loses_and_doubles_nothing(
    workers, beat, broker, providers, settings, tmp_path  # noqa: F811  (fixtures)
):
    for name, value in PRODUCT_SETTINGS.items():
        setattr(settings, name, value)
    drill = Drill(fake=providers, start_worker=workers, broker=broker, size=SIZE, logs=tmp_path)
    try:
        faults = play(drill, SIZE)
        problems = check(drill, faults, SIZE)
    finally:
        drill.figures.update(duration_seconds=round(time.monotonic() - drill.began, 1), logs=str(tmp_path))
        line = json.dumps(drill.figures, default=str)
        print(f"FAULT-INJECTION FIGURES {line}")
        if os.environ.get("FAULT_INJECTION_FIGURES"):
            Path(os.environ["FAULT_INJECTION_FIGURES"]).write_text(line + "\n")

    found = {name: found for name, found in problems.items() if found}
    if found:
        print("FAULT-INJECTION PROBLEMS", json.dumps(found, indent=1, default=str))
    assert found == {}

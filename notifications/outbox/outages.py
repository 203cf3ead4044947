"""Provider health, from the outcomes of every worker's attempts.

A provider that fails everyone's messages for now (5xx, timeouts, refused connections —
not a refusal of one bad number) NOTIFY_OUTAGE_AFTER times in a row, with no success in
between, is in an outage. It is put on the timeline of every open fault, shown on
/healthz and on the war-room page, and while it lasts nobody is escalated or replaced for
a silence it caused (see `response.engagements`). The first success ends it.

Counting runs after the attempt's own transaction, in short conditional UPDATEs on one
row per transport: the outcome of a send never waits on it, and a failure here is logged,
never raised.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError
from django.db.models import F, Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from incidents import services as incident_services
from incidents.event_types import EventKind
from incidents.models import Fault, TimelineEvent

from .. import channels
from ..models import ProviderState
from ..transports.base import TransportError

log = logging.getLogger(__name__)

NAMES = {"dingtalk": "DingTalk", "aliyun_sms": "Alibaba Cloud SMS", "aliyun_voice": "Alibaba Cloud voice",
         "email": "Email", "webhook": "The webhook"}


def observe(transport: str, *, ok: bool, refused: bool = False, error: str = "") -> None:
    """Count one attempt's outcome; declare or end an outage when it changes."""
    if transport == "sandbox" or refused:
        return
    try:
        if ok:
            _success(transport)
        else:
            _failure(transport, error)
    except DatabaseError:
        log.warning("could not count an attempt of %s", transport, exc_info=True)


def _state(transport: str):
    ProviderState.objects.get_or_create(transport=transport)
    return ProviderState.objects.filter(transport=transport)


# A healthy provider's row is written at most this often: a storm of successful sends reads
# it once each, and does not queue on its lock.
QUIET = timedelta(seconds=10)


def _success(transport: str) -> None:
    now = timezone.now()
    known = ProviderState.objects.filter(transport=transport).values("failures", "outage_since", "last_success_at").first()
    if known and not known["failures"] and known["outage_since"] is None and known["last_success_at"] and (
        now - known["last_success_at"] < QUIET
    ):
        return
    rows = _state(transport) if known is None else ProviderState.objects.filter(transport=transport)
    since = known["outage_since"] if known else None
    rows.update(failures=0, failing_since=None, last_success_at=now)
    if since is not None and rows.filter(outage_since=since).update(outage_since=None, outage_ended_at=now) == 1:
        seconds = int((now - since).total_seconds())
        text = f"{name(transport)} answers again after {seconds // 60} min {seconds % 60} s; held messages are going out"
        _tell_open_faults(outage=False, text=text, data={
            "transport": transport, "since": since.isoformat(), "until": now.isoformat(), "seconds": seconds,
        })


def _failure(transport: str, error: str) -> None:
    now = timezone.now()
    rows = _state(transport)
    rows.update(failures=F("failures") + 1, failing_since=Coalesce(F("failing_since"), Value(now)), last_failure_at=now,
                last_error=error[:500])
    declared = rows.filter(outage_since__isnull=True, failures__gte=settings.NOTIFY_OUTAGE_AFTER).update(
        outage_since=now
    )
    if declared == 1:
        state = rows.get()
        text = (f"{name(transport)} is failing for everyone ({state.failures} attempts in a row: {error}); "
                "messages are held and retried, and nobody is escalated for the silence")
        _tell_open_faults(outage=True, text=text, data={
            "transport": transport, "since": state.failing_since.isoformat(), "failures": state.failures,
        })


def _tell_open_faults(*, outage: bool, text: str, data: dict) -> None:
    for fault in Fault.objects.filter(status__in=Fault.OPEN_STATUSES).only("pk"):
        incident_services.provider_state_record(fault=fault, outage=outage, text=text, data=data)


def name(transport: str) -> str:
    return NAMES.get(transport, transport)


def holds(transport: str, *, may_probe: bool) -> bool:
    """True when a message for `transport` should wait: the provider is in an outage and
    this attempt is not the one probe it gets every NOTIFY_OUTAGE_PROBE_EVERY seconds.

    Only a message that cannot be lost or doubled by a timeout may be the probe
    (`may_probe`: a keyed one, or one whose receipt settles it); a provider with a harmless
    request of its own is probed with that by the sweeper instead (see `probe`).
    """
    if transport == "sandbox":
        return False
    try:
        rows = ProviderState.objects.filter(transport=transport, outage_since__isnull=False)
        if not rows.exists():
            return False
        if not may_probe or channels.has_probe(transport):
            return True
        return not _probe_slot(rows)
    except DatabaseError:
        log.warning("could not read the state of %s; sending", transport, exc_info=True)
        return False


def _probe_slot(rows) -> bool:
    now = timezone.now()
    due = now - timedelta(seconds=settings.NOTIFY_OUTAGE_PROBE_EVERY)
    return rows.filter(Q(probe_at__isnull=True) | Q(probe_at__lte=due)).update(probe_at=now) == 1


def probe() -> int:
    """Run by the sweeper: test each provider in an outage that has a harmless request."""
    tested = 0
    for state in current():
        rows = ProviderState.objects.filter(pk=state.pk, outage_since__isnull=False)
        if not channels.has_probe(state.transport) or not _probe_slot(rows):
            continue
        tested += 1
        try:
            channels.probe(state.transport)
        except TransportError as error:
            observe(state.transport, ok=False, refused=error.permanent, error=error.message)
        else:
            observe(state.transport, ok=True)
    return tested


def tell_new_faults() -> int:
    """Put each outage on the timeline of faults declared since it began (run by the sweeper)."""
    told = 0
    for state in current():
        told_already = TimelineEvent.objects.filter(
            kind=EventKind.PROVIDER_OUTAGE, created_at__gte=state.outage_since, data__transport=state.transport
        ).values("fault_id")
        faults = Fault.objects.filter(status__in=Fault.OPEN_STATUSES, declared_at__gte=state.outage_since).exclude(
            pk__in=told_already
        )
        text = (f"{name(state.transport)} has been failing for everyone since {state.outage_since:%H:%M:%S} UTC; "
                "messages are held and retried, and nobody is escalated for the silence")
        for fault in faults[: settings.NOTIFY_SWEEP_BATCH]:
            incident_services.provider_state_record(fault=fault, outage=True, text=text, data={
                "transport": state.transport, "since": state.outage_since.isoformat(), "failures": state.failures,
            })
            told += 1
    return told


def current() -> list[ProviderState]:
    """The providers in an outage now."""
    return list(ProviderState.objects.filter(outage_since__isnull=False).order_by("transport"))


def current_of(transports) -> list[ProviderState]:
    """Those of `transports` in an outage now."""
    return list(ProviderState.objects.filter(transport__in=list(transports), outage_since__isnull=False))


def last_ended(transports):
    """When the latest outage of any of `transports` ended, or None."""
    ended = ProviderState.objects.filter(transport__in=list(transports), outage_ended_at__isnull=False)
    return ended.order_by("-outage_ended_at").values_list("outage_ended_at", flat=True).first()

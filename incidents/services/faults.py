"""Faults: declaring one, its level, its status from declared to closed, and its suspects."""

from collections.abc import Iterable
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from roster import selectors as roster_selectors
from roster.models import Business, Person

from .. import metrics, permissions
from ..errors import InvalidInput, InvalidTransition
from ..event_types import EventKind
from ..models import Fault
from ._common import (
    Role,
    _assign,
    _level,
    _lock,
    _person_ref,
    _record,
    _require,
    _require_manager,
    _require_not_closed,
    _require_open,
    _user,
)


@transaction.atomic
def fault_declare(
    *,
    title: str,
    level: int,
    affected_business: Business,
    impact: str = "",
    suspected_cause_businesses: Iterable[Business] = (),
    detected_at: datetime | None = None,
    commander: Person | None = None,
    fault_handler: Person | None = None,
    actor=None,
    source: str | None = None,
    reason: str = "",
) -> Fault:
    """Declare a fault; roles not given are chosen from the roster.

    `source` names who acted when it is not a user (e.g. the fault handler on duty, for a
    fault declared from monitoring); `reason` says why, on the timeline (the alert and
    the level rule that matched, a suspected cause and why it is suspected).
    """
    if actor is not None:
        _require(permissions.can_declare(actor), "You may not declare faults.")
    title = (title or "").strip()
    if not title:
        raise InvalidInput("A fault needs a title.")
    level = _level(level)
    now = timezone.now()
    detected_at = detected_at or now
    if detected_at > now + timedelta(minutes=1):
        raise InvalidInput("The detection time is in the future.")
    suspects = list(dict.fromkeys(suspected_cause_businesses))

    fault = Fault.objects.create(
        title=title,
        level=level,
        impact=impact or "",
        affected_business=affected_business,
        declared_by=_user(actor),
        detected_at=detected_at,
        declared_at=now,
    )
    if suspects:
        fault.suspected_cause_businesses.add(*suspects)
    # Roles not given are chosen from the roster; the event says which rule or schedule
    # chose them and which candidates were skipped on the way.
    given = {"given": True}
    commander, commander_why = (
        (commander, given) if commander is not None
        else roster_selectors.choose_commander(level=level, business=affected_business, at=now)
    )
    fault_handler, handler_why = (
        (fault_handler, given) if fault_handler is not None else roster_selectors.fault_handler_on_duty(at=now)
    )
    roles, unfilled_roles = [], []
    for role, person, why in [(Role.COMMANDER, commander, commander_why), (Role.FAULT_HANDLER, fault_handler, handler_why)]:
        if person is None:
            unfilled_roles.append({"role": role, "selection": why})
            continue
        _assign(fault, person, role, actor)
        roles.append({"role": role, "person": _person_ref(person), "selection": why})
    _record(
        fault,
        EventKind.FAULT_DECLARED,
        actor=actor,
        source=source,
        data={
            "title": title,
            "level": level,
            "impact": fault.impact,
            "affected_business": {"id": affected_business.pk, "name": affected_business.name},
            "suspected_cause_businesses": [{"id": b.pk, "name": b.name} for b in suspects],
            "roles": roles,
            "unfilled_roles": unfilled_roles,
            "reason": reason,
        },
    )
    return fault


@transaction.atomic
def fault_change_level(
    *, fault: Fault, level: int, reason: str = "", actor=None, source: str | None = None
) -> Fault:
    fault = _lock(fault)
    _require_manager(actor, fault)
    _require_not_closed(fault)
    level = _level(level)
    if level == fault.level:
        raise InvalidInput(f"The fault is already {fault.get_level_display()}.")
    previous = fault.level
    fault.level = level
    fault.save(update_fields=["level"])
    _record(
        fault,
        EventKind.FAULT_LEVEL_CHANGED,
        actor=actor,
        source=source,
        data={"from": previous, "to": level, "raised": level < previous, "reason": reason},
    )
    return fault


def _change_status(
    fault: Fault, *, to: str, allowed_from: tuple, actor, kind: EventKind, data: dict | None = None,
    source: str | None = None,
) -> Fault:
    fault = _lock(fault)
    _require_manager(actor, fault)
    if fault.status not in allowed_from:
        raise InvalidTransition(
            f"Fault #{fault.pk} is {fault.get_status_display().lower()}; "
            f"it can become {Fault.Status(to).label.lower()} only from "
            f"{' or '.join(Fault.Status(s).label.lower() for s in allowed_from)}."
        )
    previous = fault.status
    now = timezone.now()
    fault.status = to
    if to == Fault.Status.MITIGATED:
        fault.mitigated_at = now
    elif to == Fault.Status.RECOVERED:
        fault.recovered_at = now
        # Recovering without an explicit mitigation step means it was mitigated by recovering.
        fault.mitigated_at = fault.mitigated_at or now
    elif to == Fault.Status.CLOSED:
        fault.closed_at = now
    elif to == Fault.Status.DECLARED:
        fault.mitigated_at = fault.recovered_at = fault.closed_at = None
    fault.save(update_fields=["status", "mitigated_at", "recovered_at", "closed_at"])
    data = {"from": previous, "to": to, **(data or {})}
    if to == Fault.Status.RECOVERED:
        # The summary is part of the recovery: same transaction, same event.
        data["summary"] = metrics.summary_store(fault=fault, at=now).data
    _record(fault, kind, actor=actor, data=data, source=source)
    return fault


@transaction.atomic
def fault_mark_mitigated(*, fault: Fault, actor=None) -> Fault:
    return _change_status(
        fault,
        to=Fault.Status.MITIGATED,
        allowed_from=(Fault.Status.DECLARED,),
        actor=actor,
        kind=EventKind.FAULT_MITIGATED,
    )


@transaction.atomic
def fault_mark_recovered(*, fault: Fault, actor=None, source: str | None = None) -> Fault:
    """`source` names who recovered it when no user did (monitoring, all clear)."""
    return _change_status(
        fault,
        to=Fault.Status.RECOVERED,
        allowed_from=Fault.OPEN_STATUSES,
        actor=actor,
        kind=EventKind.FAULT_RECOVERED,
        source=source,
    )


@transaction.atomic
def fault_close(*, fault: Fault, actor=None) -> Fault:
    return _change_status(
        fault,
        to=Fault.Status.CLOSED,
        allowed_from=(Fault.Status.RECOVERED,),
        actor=actor,
        kind=EventKind.FAULT_CLOSED,
    )


@transaction.atomic
def fault_reopen(*, fault: Fault, reason: str = "", actor=None) -> Fault:
    return _change_status(
        fault,
        to=Fault.Status.DECLARED,
        allowed_from=(Fault.Status.RECOVERED, Fault.Status.CLOSED),
        actor=actor,
        kind=EventKind.FAULT_REOPENED,
        data={"reason": reason},
    )


@transaction.atomic
def fault_suspect_add(
    *, fault: Fault, business: Business, actor=None, source: str | None = None, reason: str = ""
) -> Fault:
    """Name one more business as a suspected cause; its emergency contacts are pulled in."""
    fault = _lock(fault)
    _require_manager(actor, fault)
    _require_open(fault, "add a suspected cause")
    if business.pk == fault.affected_business_id:
        raise InvalidInput(f"{business.name} is the affected business.")
    if fault.suspected_cause_businesses.filter(pk=business.pk).exists():
        raise InvalidInput(f"{business.name} is already a suspected cause.")
    fault.suspected_cause_businesses.add(business)
    _record(
        fault,
        EventKind.FAULT_SUSPECT_ADDED,
        actor=actor,
        source=source,
        data={"business": {"id": business.pk, "name": business.name}, "reason": reason},
    )
    return fault


@transaction.atomic
def fault_monitoring_cleared(*, fault: Fault, source: str, alerts: int) -> Fault:
    """Monitoring reports all `alerts` resolved for an open fault; its commander decides whether it is recovered."""
    fault = _lock(fault)
    _require_open(fault, "report monitoring all clear")
    _record(fault, EventKind.MONITORING_CLEARED, actor=None, source=source, data={"alerts": alerts})
    return fault

"""Deadlines of the level's SLA that passed, and what the notifications app did about them."""

from django.db import transaction

from ..errors import InvalidInput
from ..event_types import EventKind
from ..models import Fault, TimelineEvent
from ._common import _lock, _record

_SLA_WHAT = ("check_in", "task_response", "progress_update", "notify")


def _sla_record(fault: Fault, kind: EventKind, what: str, text: str, data: dict) -> TimelineEvent:
    if what not in _SLA_WHAT:
        raise InvalidInput(f"An SLA is one of {', '.join(_SLA_WHAT)}.")
    fault = _lock(fault)
    return _record(fault, kind, actor=None, data={"what": what, "text": text, **data})


@transaction.atomic
def sla_reminder_record(*, fault: Fault, what: str, text: str, data: dict) -> TimelineEvent:
    """Someone was reminded of a deadline that has passed ("Task … not acknowledged: Li Lei reminded")."""
    return _sla_record(fault, EventKind.SLA_REMINDER, what, text, data)


@transaction.atomic
def sla_breach_record(*, fault: Fault, what: str, text: str, data: dict) -> TimelineEvent:
    """A deadline was missed and the product acted: re-paged, escalated, told the commander."""
    return _sla_record(fault, EventKind.SLA_BREACHED, what, text, data)

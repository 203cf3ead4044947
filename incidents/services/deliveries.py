"""What became of the messages the notifications app sent for a fault."""

from django.db import transaction

from ..event_types import EventKind
from ..models import Fault, TimelineEvent
from ._common import _lock, _record


@transaction.atomic
def delivery_outcome_record(*, fault: Fault, text: str, data: dict) -> TimelineEvent:
    """Put one delivery outcome on the timeline ("SMS to Li Lei delivered").

    Recorded whatever the fault's status: a receipt that arrives after closing is still a fact.
    """
    fault = _lock(fault)
    return _record(fault, EventKind.DELIVERY_OUTCOME, actor=None, data={"text": text, **data})

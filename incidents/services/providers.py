"""A provider (DingTalk, Alibaba Cloud SMS or voice, ...) failing for everyone, and answering again.

The notifications app decides when a provider is down; the timeline keeps it so that the
war room, and whoever reviews the fault, can see why people were not reached and were
not escalated for it.
"""

from django.db import transaction

from ..event_types import EventKind
from ..models import Fault, TimelineEvent
from ._common import _lock, _record


@transaction.atomic
def provider_state_record(*, fault: Fault, outage: bool, text: str, data: dict) -> TimelineEvent:
    """Record that a provider went down (`outage=True`) or came back (`outage=False`) during the fault.

    Recorded whatever the fault's status, like a delivery outcome: it explains messages
    that may still be settling after recovery.
    """
    fault = _lock(fault)
    kind = EventKind.PROVIDER_OUTAGE if outage else EventKind.PROVIDER_RECOVERED
    return _record(fault, kind, actor=None, data={"text": text, **data})

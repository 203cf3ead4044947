"""The one-click conference: the commander asks for it, the notifications app starts it."""

from django.db import transaction

from .. import permissions
from ..event_types import EventKind
from ..models import Fault, TimelineEvent
from ._common import _lock, _person_ref, _record, _require_manager, _require_open


@transaction.atomic
def conference_request(*, fault: Fault, actor=None) -> TimelineEvent:
    """Ask for a video conference with everyone who has checked in; the link follows."""
    fault = _lock(fault)
    _require_manager(actor, fault)
    _require_open(fault, "start a conference")
    requester = permissions.person_of(actor)
    return _record(
        fault,
        EventKind.CONFERENCE_REQUESTED,
        actor=actor,
        data={"requested_by": _person_ref(requester) if requester is not None else None},
    )


@transaction.atomic
def conference_started(*, fault: Fault, url: str, data: dict) -> TimelineEvent:
    """The conference is up; `url` is its join link ("externalLinkUrl")."""
    fault = _lock(fault)
    return _record(fault, EventKind.CONFERENCE_STARTED, actor=None, data={"url": url, **data})

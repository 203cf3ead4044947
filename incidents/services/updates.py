"""Status updates: the commander's progress updates and the handlers' troubleshooting notes."""

from django.db import transaction
from django.utils import timezone

from .. import permissions
from ..errors import InvalidInput
from ..event_types import EventKind
from ..models import Fault, StatusUpdate
from ._common import _lock, _record, _require, _require_not_closed, _user


@transaction.atomic
def status_update_post(
    *, fault: Fault, body: str, kind: str = StatusUpdate.Kind.PROGRESS, actor=None
) -> StatusUpdate:
    fault = _lock(fault)
    if kind not in StatusUpdate.Kind.values:
        raise InvalidInput(f"Update kind must be one of {', '.join(StatusUpdate.Kind.values)}.")
    if actor is not None:
        if kind == StatusUpdate.Kind.PROGRESS:
            _require(
                permissions.can_manage(actor, fault),
                "Only the fault's commander may post progress updates; handlers add troubleshooting notes.",
            )
        else:
            _require(permissions.is_participant(actor, fault), "Only people with a role in this fault may add notes.")
    _require_not_closed(fault)
    body = (body or "").strip()
    if not body:
        raise InvalidInput("An update needs some text.")
    update = StatusUpdate.objects.create(
        fault=fault,
        kind=kind,
        body=body,
        author=_user(actor),
        posted_at=timezone.now(),
    )
    _record(fault, EventKind.UPDATE_POSTED, actor=actor, data={"update": update.pk, "kind": kind, "body": body})
    return update

"""The one-click conference: asked for on the timeline, started through the outbox."""

from incidents import services as incident_services
from incidents.models import Fault

from ..models import Channel, Delivery
from ..outbox.attempts import Settler, outcome_record, sandbox_suffix
from ..outbox.rows import delivery_create
from ..texts import headline
from ..transports.base import Sent


def conference_start(event, fault: Fault) -> Delivery:
    return delivery_create(
        fault=fault,
        channel=Channel.DINGTALK_CONFERENCE,
        target="conference",
        subject=headline(fault)[:30],
        payload={"requested_by": event.data.get("requested_by")},
        idempotency_key=f"fault:{fault.pk}:conference:{event.seq}",
    )


def _started(d: Delivery, sent: Sent) -> None:
    data = sent.data or {}
    incident_services.conference_started(
        fault=d.fault,
        url=data.get("externalLinkUrl", ""),
        data={
            "conference": str(data.get("conferenceId", "")),
            "room_code": data.get("roomCode", ""),
            "phone_numbers": data.get("phoneNumbers") or [],
            "members": data.get("members") or [],
            "transport": d.transport,
        },
    )


def _not_started(d: Delivery, error: str) -> None:
    outcome_record(d, f"Could not start the video conference: {error}" + sandbox_suffix(d), status=Delivery.Status.FAILED, error=error)


CONFERENCE_STARTED = Settler(sent=_started, failed=_not_started)

"""The fault's collaboration group: one per fault, its check-in card, later members, and
what happens in the fault posted to it as it happens."""

import secrets

from django.db import transaction
from django.utils import timezone

from incidents import selectors as incident_selectors
from incidents import services as incident_services
from incidents.errors import InvalidInput
from incidents.event_types import EventKind
from incidents.models import Fault, RoleAssignment
from roster.models import Person

from .. import texts
from ..models import Channel, CollaborationGroup, Delivery
from ..outbox.attempts import Settler, outcome_record, sandbox_suffix
from ..outbox.queue import enqueue, priority_for, queue_for
from ..outbox.rows import delivery_create
from ..transports.base import Sent

Status = Delivery.Status


def _member(person: Person) -> dict:
    return {"id": person.pk, "name": person.name, "user_id": person.dingtalk_user_id}


def group_open(*, fault: Fault, people: list[Person]) -> CollaborationGroup:
    """Write the fault's group row and the delivery that creates it (once per fault)."""
    group = CollaborationGroup.objects.filter(fault=fault).first()
    if group is not None:
        return group
    commander = incident_selectors.role_holder(fault.pk, RoleAssignment.Role.COMMANDER)
    owner = commander if commander is not None and commander.dingtalk_user_id else next(
        (p for p in people if p.dingtalk_user_id), None
    )
    group = CollaborationGroup.objects.create(
        fault=fault,
        # Drawn once and sent with every attempt: DingTalk returns the same group for it.
        uuid=f"warroom-{fault.pk}-{secrets.token_hex(8)}",
        title=f"{fault.get_level_display()} #{fault.pk} {fault.title}"[:30],
        owner=owner,
        members=[_member(p) for p in people],
        created_at=timezone.now(),
    )
    _group_create(fault, group, key=f"fault:{fault.pk}:group")
    return group


def _group_create(fault: Fault, group: CollaborationGroup, *, key: str) -> Delivery:
    # Retried until it exists (or NOTIFY_RETRY_HORIZON): the uuid makes every retry safe.
    return delivery_create(
        fault=fault,
        channel=Channel.DINGTALK_GROUP_CREATE,
        group=group,
        subject=group.title,
        body=", ".join(m["name"] for m in group.members),
        idempotency_key=key,
    )


def group_create_again(fault: Fault, *, seq: int) -> None:
    """A fault resolved before its group existed cancelled the creation: start it again.

    Same group row, same uuid, so that DingTalk returns the group if an earlier attempt
    did create it. Whoever was still to be added joins with the creation.
    """
    group = CollaborationGroup.objects.filter(fault=fault, open_conversation_id="").first()
    if group is None:
        return
    creates = group.deliveries.filter(channel=Channel.DINGTALK_GROUP_CREATE)
    if creates.exclude(status=Status.CANCELLED).exists():
        return  # still under way, or failed for good (and then nothing waits for it)
    cancelled_adds = group.deliveries.filter(
        channel=Channel.DINGTALK_GROUP_MEMBER_ADD, status=Status.CANCELLED
    ).select_related("person")
    for d in cancelled_adds:
        if d.person is not None and not group.has_member(d.person_id):
            group.members.append(_member(d.person))
    group.save(update_fields=["members"])
    _group_create(fault, group, key=f"fault:{fault.pk}:group:{seq}")


def usable_group(fault: Fault) -> CollaborationGroup | None:
    """The fault's group, if it exists or is still being created.

    None once its creation has failed or been cancelled: nothing may wait for a group
    that will never exist (a message for it would stay pending forever).
    """
    group = CollaborationGroup.objects.filter(fault=fault).first()
    if group is None or group.is_ready:
        return group
    creating = group.deliveries.filter(
        channel=Channel.DINGTALK_GROUP_CREATE, status__in=(Status.PENDING, Status.SENDING)
    )
    return group if creating.exists() else None


def group_join(*, fault: Fault, person: Person) -> Delivery | None:
    """Add a later participant to the group (a no-op for someone already in it)."""
    group = usable_group(fault)
    if group is None or group.has_member(person.pk):
        return None
    return delivery_create(
        fault=fault,
        channel=Channel.DINGTALK_GROUP_MEMBER_ADD,
        group=group,
        person=person,
        subject=group.title,
        idempotency_key=f"fault:{fault.pk}:group:member:{person.pk}",
    )


def card_params(fault: Fault) -> dict:
    """The check-in card's variables (cardParamMap values are strings)."""
    return {
        "fault": str(fault.pk),
        "level": fault.get_level_display(),
        "title": fault.title,
        "impact": fault.impact or "-",
        "status": texts.card_status(fault, language=texts.group_language()),
        "url": texts.war_room_url(fault),
        "checked_in": "false",
    }


def sync(event, fault: Fault) -> Delivery | None:
    """Post what just happened to the group."""
    group = usable_group(fault)
    if group is None:
        return None
    title, text = texts.sync(event, fault)
    return delivery_create(
        fault=fault,
        channel=Channel.DINGTALK_GROUP_MESSAGE,
        group=group,
        subject=title,
        body=text,
        idempotency_key=f"fault:{fault.pk}:sync:{event.seq}",
        # "Recovered" is the one message that must still go once the fault is resolved.
        stop_on_resolve=event.kind != EventKind.FAULT_RECOVERED,
    )


def card_check_in(*, out_track_id: str, user_id: str):
    """A click on the card's check-in button: check the DingTalk user in to the card's fault."""
    d = Delivery.objects.select_related("fault").filter(channel=Channel.DINGTALK_CARD, provider_key=out_track_id).first()
    if d is None:
        raise InvalidInput("This card is not one of ours.")
    person = Person.objects.filter(dingtalk_user_id=user_id).first() if user_id else None
    if person is None:
        raise InvalidInput("This DingTalk user is not in the roster.")
    return incident_services.role_check_in(fault=d.fault, person=person, via="card")


# --- recording what the outbox did (inside its transaction) -------------------------------


def _created(d: Delivery, sent: Sent) -> None:
    now = timezone.now()
    group = CollaborationGroup.objects.select_for_update().get(pk=d.group_id)
    cid = (sent.data or {}).get("open_conversation_id", "")
    group.open_conversation_id, group.chat_id = cid, (sent.data or {}).get("chat_id", "")
    group.ready_at = now
    group.save(update_fields=["open_conversation_id", "chat_id", "ready_at"])
    joined = [m["name"] for m in group.members if m.get("user_id")]
    missing = [m["name"] for m in group.members if not m.get("user_id")]
    text = f"Collaboration group created with {', '.join(joined)}"
    if missing:
        text += f"; could not add {', '.join(missing)} (no DingTalk userId)"
    outcome_record(d, text + sandbox_suffix(d), status="created", members=joined, not_added=missing, open_conversation_id=cid)
    fault = Fault.objects.get(pk=d.fault_id)
    delivery_create(
        fault=fault,
        channel=Channel.DINGTALK_CARD,
        group=group,
        subject=texts.headline(fault),
        body=f"{fault.impact}\n\n{texts.war_room_url(fault)}",
        payload={"params": card_params(fault), "at_user_ids": [m["user_id"] for m in group.members if m.get("user_id")]},
        idempotency_key=f"fault:{fault.pk}:card",
    )
    # Everything that waited for the group can go now.
    waiting = list(
        Delivery.objects.filter(group=group, status=Status.PENDING, target="").values_list("pk", "purpose", "channel")
    )
    Delivery.objects.filter(pk__in=[pk for pk, _, _ in waiting]).update(target=cid, queued_at=now)
    for pk, purpose, channel in waiting:
        queue = queue_for(purpose=purpose, channel=channel)
        priority = priority_for(channel=channel)
        transaction.on_commit(lambda pk=pk, queue=queue, priority=priority: enqueue(pk, queue=queue, priority=priority))


def _not_created(d: Delivery, error: str) -> None:
    outcome_record(d, f"Could not create the collaboration group: {error}" + sandbox_suffix(d), status=Status.FAILED, error=error)
    # What waited for the group can never be sent.
    Delivery.objects.filter(group_id=d.group_id, status=Status.PENDING, target="").update(
        status=Status.CANCELLED, finished_at=timezone.now(), last_error="the group could not be created"
    )


def _joined(d: Delivery, sent: Sent) -> None:
    outcome_record(d, f"{d.person.name} joined the group" + sandbox_suffix(d), status="added")


def _not_joined(d: Delivery, error: str) -> None:
    outcome_record(d, f"Could not add {d.person.name} to the group: {error}" + sandbox_suffix(d), status=Status.FAILED, error=error)


GROUP_CREATED = Settler(sent=_created, failed=_not_created)
MEMBER_ADDED = Settler(sent=_joined, failed=_not_joined)

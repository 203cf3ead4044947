"""The response around the outbox: the collaboration group, dialling until check-in,
notifications repeated until recovery, deadlines inside the response, progress sync and
the one-click conference.

Two ways in, so that no incidents service ever writes more than its one timeline event:

- `on_timeline_event` runs inside every incidents service's transaction. It writes only
  notifications rows — outbox rows, the group, engagements, deadlines — which commit or
  roll back with the event. Anything that needs a timeline entry of its own is left to:
- `follow_ups_run`, run by beat every NOTIFY_FOLLOW_UP_EVERY seconds (and queued right after
  a change that made something due). It takes what is due — first pages, a role for the
  emergency contacts, re-pages, escalation steps, commander replacement, repeated
  notifications, task and progress reminders — one row per transaction, and records
  through incidents services.

Every deadline lives in the database (Engagement.next_check_at, Deadline.due_at); nothing
here waits on a broker ETA.
"""

import logging
import secrets
import urllib.parse
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction

from incidents import services as incident_services
from incidents.models import Fault, RoleAssignment, SLAPolicy, StatusUpdate, Task
from roster import selectors as roster_selectors
from roster.models import CommanderRule, NotificationGroup, Person
from django.utils import timezone

from . import services, texts
from .models import Channel, CollaborationGroup, Deadline, Delivery, Engagement
from .transports import dingtalk, sandbox
from .transports.base import Sent, TransportError

log = logging.getLogger(__name__)

Role = RoleAssignment.Role
Status = Delivery.Status

# What the product promises when an admin has deleted the level's SLA row (the P1 defaults).
FALLBACK_SLA = {
    "notify_within": timedelta(minutes=5),
    "check_in_within": timedelta(minutes=10),
    "task_response_within": timedelta(minutes=15),
    "progress_update_every": timedelta(minutes=15),
    "renotify_every": timedelta(minutes=30),
}

# Ways to remind someone of a deadline, gentlest first: a reminder is not a page.
REMINDER_CHANNELS = (Channel.DINGTALK_DING_APP, Channel.ALIYUN_SMS, Channel.EMAIL, Channel.DINGTALK_DING_SMS)


@dataclass(frozen=True)
class Sla:
    notify_within: timedelta
    check_in_within: timedelta
    task_response_within: timedelta
    progress_update_every: timedelta
    renotify_every: timedelta


def sla_for(fault: Fault) -> Sla:
    row = SLAPolicy.objects.filter(level=fault.level).first()
    if row is None:
        return Sla(**FALLBACK_SLA)
    return Sla(**{name: getattr(row, name) for name in FALLBACK_SLA})


war_room_url = texts.war_room_url
_headline = texts.headline


def _ref(person: Person) -> dict:
    return {"id": person.pk, "name": person.name}


def _active_roles(fault_id: int, person_id: int):
    return RoleAssignment.objects.filter(fault_id=fault_id, person_id=person_id, ended_at__isnull=True)


def _checked_in(fault_id: int, person_id: int) -> bool:
    roles = _active_roles(fault_id, person_id)
    return roles.exists() and not roles.filter(checked_in_at__isnull=True).exists()


def _commander(fault: Fault) -> Person | None:
    a = RoleAssignment.objects.filter(fault=fault, role=Role.COMMANDER, ended_at__isnull=True).select_related("person").first()
    return a.person if a else None


def _fault_handler(fault: Fault) -> Person | None:
    a = (
        RoleAssignment.objects.filter(fault=fault, role=Role.FAULT_HANDLER, ended_at__isnull=True)
        .select_related("person")
        .first()
    )
    return a.person if a else None


def _after_commit_follow_up(fault_id: int) -> None:
    """Queue a follow-up run for the fault after commit; beat runs one anyway if the broker is down."""

    def queue():
        from . import tasks

        try:
            tasks.follow_up.apply_async(kwargs={"fault_id": fault_id})
        except Exception:
            log.warning("could not queue the follow-up of fault %s; beat will run it", fault_id, exc_info=True)

    transaction.on_commit(queue)


# --- inside the service's transaction ------------------------------------------------------


def on_timeline_event(event) -> None:
    """Subscribed with in_transaction=True: write the rows the event calls for, and no event."""
    handler = _HANDLERS.get(event.kind)
    if handler is not None:
        handler(event, event.fault)
    if event.kind in texts.SYNC:
        _sync(event, event.fault)


def _declared(event, fault: Fault) -> None:
    now = timezone.now()
    people: dict[Person, str] = {}
    for a in RoleAssignment.objects.filter(fault=fault, ended_at__isnull=True).select_related("person"):
        people.setdefault(a.person, a.get_role_display().lower())
    for business in [fault.affected_business, *fault.suspected_cause_businesses.all()]:
        for person in roster_selectors.emergency_contacts(business=business, at=now):
            people.setdefault(person, f"emergency contact of {business.name}")
    group_open(fault=fault, people=list(people))
    for person, reason in people.items():
        engagement_open(fault=fault, person=person, reason=reason)
    sla = sla_for(fault)
    # The first notification goes now (well within notify_within); the scheduler repeats it.
    notification_round(fault=fault, round=1)
    _deadline(fault, Deadline.Kind.RENOTIFY, due_at=now + sla.renotify_every, count=1)
    _deadline(fault, Deadline.Kind.PROGRESS, due_at=now + sla.progress_update_every)
    _after_commit_follow_up(fault.pk)


def _role_assigned(event, fault: Fault) -> None:
    person = Person.objects.filter(pk=(event.data.get("person") or {}).get("id")).first()
    if person is None:
        return
    replaced = event.data.get("replaced")
    if replaced and not _active_roles(fault.pk, replaced["id"]).exists():
        # A replaced commander with no other role cannot check in: stop dialling him.
        old = Person.objects.filter(pk=replaced["id"]).first()
        if old is not None:
            reason = f"{old.name} is no longer commander"
            Engagement.objects.filter(fault=fault, person=old, ended_at__isnull=True).update(
                ended_at=timezone.now(), end_reason=reason, next_check_at=None
            )
            _cancel_after_commit(fault, reason, person=old)
    if fault.is_open:
        role = Role(event.data.get("role")).label.lower() if event.data.get("role") in Role.values else "member"
        engagement_open(fault=fault, person=person, reason=role)
        group_join(fault=fault, person=person)
        _after_commit_follow_up(fault.pk)


def _suspect_added(event, fault: Fault) -> None:
    from roster.models import Business

    business = Business.objects.filter(pk=(event.data.get("business") or {}).get("id")).first()
    if business is None or not fault.is_open:
        return
    for person in roster_selectors.emergency_contacts(business=business, at=timezone.now()):
        engagement_open(fault=fault, person=person, reason=f"emergency contact of {business.name}")
        group_join(fault=fault, person=person)
    _after_commit_follow_up(fault.pk)


def _checked_in_event(event, fault: Fault) -> None:
    person = Person.objects.filter(pk=(event.data.get("person") or {}).get("id")).first()
    if person is None or not _checked_in(fault.pk, person.pk):
        return
    now = timezone.now()
    Engagement.objects.filter(fault=fault, person=person, ended_at__isnull=True).update(
        checked_in_at=now, ended_at=now, end_reason="checked in", next_check_at=None
    )
    _cancel_after_commit(fault, f"{person.name} checked in", person=person)


def _resolved(event, fault: Fault) -> None:
    now = timezone.now()
    reason = f"the fault is {event.data.get('to', 'resolved')}"
    Engagement.objects.filter(fault=fault, ended_at__isnull=True).update(ended_at=now, end_reason=reason, next_check_at=None)
    Deadline.objects.filter(fault=fault, done_at__isnull=True).update(done_at=now)
    _cancel_after_commit(fault, reason)
    if event.kind == "fault.recovered":
        # Keyed by the event: a fault reopened and recovered again is announced again.
        notification_round(fault=fault, round=f"recovered:{event.seq}", final=True)


def _reopened(event, fault: Fault) -> None:
    # Repeats and progress deadlines start again; people are pulled in again by new assignments.
    now, sla = timezone.now(), sla_for(fault)
    _group_create_again(event, fault)
    Deadline.objects.filter(fault=fault, kind=Deadline.Kind.RENOTIFY).update(due_at=now, done_at=None)
    Deadline.objects.filter(fault=fault, kind=Deadline.Kind.PROGRESS).update(
        due_at=now + sla.progress_update_every, done_at=None, stage=0
    )


def _update_posted(event, fault: Fault) -> None:
    if event.data.get("kind") != StatusUpdate.Kind.PROGRESS:
        return
    due = timezone.now() + sla_for(fault).progress_update_every
    Deadline.objects.filter(fault=fault, kind=Deadline.Kind.PROGRESS, done_at__isnull=True).update(due_at=due, stage=0)


def _task_created(event, fault: Fault) -> None:
    task = Task.objects.filter(pk=event.data.get("task")).first()
    if task is not None:
        _deadline(fault, Deadline.Kind.TASK, due_at=task.due_at, task=task)


def _task_updated(event, fault: Fault) -> None:
    task = Task.objects.filter(pk=event.data.get("task")).first()
    if task is None:
        return
    rows = Deadline.objects.filter(fault=fault, kind=Deadline.Kind.TASK, task=task, done_at__isnull=True)
    if task.acknowledged_at is not None or task.status in (Task.Status.DONE, Task.Status.CANCELLED):
        rows.update(done_at=timezone.now())
    elif "due_at" in event.data:
        rows.update(due_at=task.due_at, stage=0)


def _conference_requested(event, fault: Fault) -> None:
    services.delivery_create(
        fault=fault,
        channel=Channel.DINGTALK_CONFERENCE,
        target="conference",
        subject=f"{_headline(fault)}"[:30],
        payload={"requested_by": event.data.get("requested_by")},
        idempotency_key=f"fault:{fault.pk}:conference:{event.seq}",
    )


def _cancel_after_commit(fault: Fault, reason: str, *, person: Person | None = None) -> None:
    """Cancel now, in the service's transaction; put the count on the timeline after commit."""
    count = services.deliveries_cancel(fault=fault, reason=reason, person=person)
    if count:
        fault_id, person_id = fault.pk, person.pk if person else None

        def record():
            services.deliveries_cancelled_record(
                fault=Fault.objects.get(pk=fault_id),
                count=count,
                reason=reason,
                person=Person.objects.get(pk=person_id) if person_id else None,
            )

        transaction.on_commit(record)


_HANDLERS = {
    "fault.declared": _declared,
    "role.assigned": _role_assigned,
    "role.checked_in": _checked_in_event,
    "fault.suspect_added": _suspect_added,
    "fault.recovered": _resolved,
    "fault.closed": _resolved,
    "fault.reopened": _reopened,
    "update.posted": _update_posted,
    "task.created": _task_created,
    "task.updated": _task_updated,
    "conference.requested": _conference_requested,
}


def _deadline(fault: Fault, kind: str, *, due_at, task: Task | None = None, count: int = 0) -> Deadline:
    key = f"fault:{fault.pk}:{kind}" + (f":{task.pk}" if task is not None else "")
    deadline, _ = Deadline.objects.get_or_create(
        key=key, defaults={"fault": fault, "kind": kind, "task": task, "due_at": due_at, "count": count}
    )
    return deadline


# --- the collaboration group ---------------------------------------------------------------


def _member(person: Person) -> dict:
    return {"id": person.pk, "name": person.name, "user_id": person.dingtalk_user_id}


def group_open(*, fault: Fault, people: list[Person]) -> CollaborationGroup:
    """Write the fault's group row and the delivery that creates it (once per fault)."""
    group = CollaborationGroup.objects.filter(fault=fault).first()
    if group is not None:
        return group
    commander = _commander(fault)
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
    return services.delivery_create(
        fault=fault,
        channel=Channel.DINGTALK_GROUP_CREATE,
        group=group,
        subject=group.title,
        body=", ".join(m["name"] for m in group.members),
        idempotency_key=key,
        # Retried until it exists; the uuid makes every retry safe.
        max_attempts=settings.NOTIFY_GROUP_MAX_ATTEMPTS,
    )


def _group_create_again(event, fault: Fault) -> None:
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
    _group_create(fault, group, key=f"fault:{fault.pk}:group:{event.seq}")


def group_join(*, fault: Fault, person: Person) -> Delivery | None:
    """Add a later participant to the group (a no-op for someone already in it)."""
    group = _usable_group(fault)
    if group is None or group.has_member(person.pk):
        return None
    return services.delivery_create(
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
        "url": war_room_url(fault),
        "checked_in": "false",
    }


# --- sending what the outbox cannot send by address alone ---------------------------------


def send(d: Delivery) -> Sent:
    """Carry a group creation, member addition, conference or custom-robot message.

    Raises TransportError like any transport.
    """
    if d.channel == Channel.DINGTALK_GROUP_CREATE:
        return _send_group_create(d)
    if d.channel == Channel.DINGTALK_GROUP_MEMBER_ADD:
        user_id = d.person.dingtalk_user_id
        if not user_id:
            raise TransportError(f"{d.person.name} has no DingTalk userId", permanent=True)
        if d.transport == "sandbox":
            return sandbox.send(d, address=user_id)
        dingtalk.scene_group_add_members(open_conversation_id=d.target, user_ids=[user_id])
        return Sent(provider_id=user_id, delivered=True)
    if d.channel == Channel.DINGTALK_CONFERENCE:
        return _send_conference(d)
    if d.channel == Channel.DINGTALK_ROBOT:
        group = NotificationGroup.objects.filter(pk=(d.payload or {}).get("notification_group")).first()
        if group is None or not group.webhook_url:
            raise TransportError("the notification group or its webhook is gone", permanent=True)
        if d.transport == "sandbox":
            return sandbox.send(d, address=group.webhook_url)
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(group.webhook_url).query)
        token = (query.get("access_token") or [""])[0]
        if not token:
            raise TransportError(f"the webhook of {group.name} has no access_token", permanent=True)
        return dingtalk.custom_robot_send(
            access_token=token, secret=group.webhook_secret, title=d.subject, text=d.body, msg_uuid=d.provider_key
        )
    raise TransportError(f"no transport for {d.channel}", permanent=True)


def _send_group_create(d: Delivery) -> Sent:
    group = d.group
    reachable = [m for m in group.members if m.get("user_id")]
    if group.owner is None or not group.owner.dingtalk_user_id or not reachable:
        raise TransportError("nobody to be in the group has a DingTalk userId", permanent=True)
    owner = group.owner.dingtalk_user_id
    others = [m["user_id"] for m in reachable if m["user_id"] != owner]
    if d.transport == "sandbox":
        d.payload = {**(d.payload or {}), "uuid": group.uuid, "owner_user_id": owner, "user_ids": others}
        sandbox.send(d, address=group.uuid)
        return Sent(
            provider_id=f"sandbox-{group.uuid}",
            delivered=True,
            data={"open_conversation_id": f"sandbox-{group.uuid}", "chat_id": ""},
        )
    data = dingtalk.scene_group_create(title=group.title, owner_user_id=owner, user_ids=others, uuid=group.uuid)
    if not data.get("open_conversation_id"):
        raise TransportError("DingTalk created no group (no open_conversation_id in the answer)")
    return Sent(provider_id=data["open_conversation_id"], delivered=True, data=data)


def _conference_people(d: Delivery) -> tuple[Person | None, list[Person]]:
    """The host and the invitees: everyone with a checked-in role who has a unionId."""
    checked_in = []
    for a in RoleAssignment.objects.filter(
        fault_id=d.fault_id, ended_at__isnull=True, checked_in_at__isnull=False
    ).select_related("person"):
        if a.person.dingtalk_union_id and a.person not in checked_in:
            checked_in.append(a.person)
    requested_by = ((d.payload or {}).get("requested_by") or {}).get("id")
    host = next((p for p in checked_in if p.pk == requested_by), None)
    if host is None:
        commander = _commander(d.fault)
        host = commander if commander in checked_in else (checked_in[0] if checked_in else None)
    return host, [p for p in checked_in if p != host]


def _send_conference(d: Delivery) -> Sent:
    host, invitees = _conference_people(d)
    if host is None:
        raise TransportError("nobody who has checked in has a DingTalk unionId", permanent=True)
    names = [host.name, *(p.name for p in invitees)]
    if d.transport == "sandbox":
        d.payload = {**(d.payload or {}), "host": host.dingtalk_union_id, "invite": [p.dingtalk_union_id for p in invitees]}
        message = sandbox.send(d, address=host.dingtalk_union_id)
        return Sent(
            provider_id=message.provider_id,
            delivered=True,
            data={"externalLinkUrl": f"{war_room_url(d.fault)}#sandbox-conference-{d.pk}", "members": names},
        )
    data = dingtalk.video_conference_create(
        host_union_id=host.dingtalk_union_id,
        title=d.subject or _headline(d.fault)[:30],
        invite_union_ids=[p.dingtalk_union_id for p in invitees],
    )
    return Sent(provider_id=str(data.get("conferenceId", "")), delivered=True, data={**data, "members": names})


# --- recording what those calls did (inside the outbox's transaction) ---------------------


def settle(d: Delivery, sent: Sent) -> None:
    """Record a successful group creation, member addition or conference."""
    if d.channel == Channel.DINGTALK_GROUP_CREATE:
        _group_created(d, sent)
    elif d.channel == Channel.DINGTALK_GROUP_MEMBER_ADD:
        _outcome(d, f"{d.person.name} joined the group", status="added")
    elif d.channel == Channel.DINGTALK_CONFERENCE:
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


def gave_up(d: Delivery, error: str) -> None:
    """Record a group creation, member addition or conference that failed for good."""
    if d.channel == Channel.DINGTALK_GROUP_CREATE:
        _outcome(d, f"Could not create the collaboration group: {error}", status=Status.FAILED, error=error)
        # What waited for the group can never be sent.
        Delivery.objects.filter(group_id=d.group_id, status=Status.PENDING, target="").update(
            status=Status.CANCELLED, finished_at=timezone.now(), last_error="the group could not be created"
        )
    elif d.channel == Channel.DINGTALK_GROUP_MEMBER_ADD:
        _outcome(d, f"Could not add {d.person.name} to the group: {error}", status=Status.FAILED, error=error)
    else:
        _outcome(d, f"Could not start the video conference: {error}", status=Status.FAILED, error=error)


def _outcome(d: Delivery, text: str, *, status: str, **extra) -> None:
    suffix = " (sandbox)" if d.transport == "sandbox" else ""
    data = {
        "delivery": d.pk,
        "channel": d.channel,
        "transport": d.transport,
        "status": status,
        "person": _ref(d.person) if d.person_id else None,
        "attempt": d.attempts,
        **extra,
    }
    incident_services.delivery_outcome_record(fault=d.fault, text=text + suffix, data=data)


def _group_created(d: Delivery, sent: Sent) -> None:
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
    _outcome(d, text, status="created", members=joined, not_added=missing, open_conversation_id=cid)
    fault = Fault.objects.get(pk=d.fault_id)
    services.delivery_create(
        fault=fault,
        channel=Channel.DINGTALK_CARD,
        group=group,
        subject=f"{_headline(fault)}",
        body=f"{fault.impact}\n\n{war_room_url(fault)}",
        payload={"params": card_params(fault), "at_user_ids": [m["user_id"] for m in group.members if m.get("user_id")]},
        idempotency_key=f"fault:{fault.pk}:card",
    )
    # Everything that waited for the group can go now.
    waiting = list(Delivery.objects.filter(group=group, status=Status.PENDING, target="").values_list("pk", flat=True))
    Delivery.objects.filter(pk__in=waiting).update(target=cid, queued_at=now)
    for pk in waiting:
        transaction.on_commit(lambda pk=pk: services.enqueue(pk))


# --- progress sync: what happens is posted to the group -----------------------------------


def _usable_group(fault: Fault) -> CollaborationGroup | None:
    """The fault's group, unless creating it has failed for good (then nothing can wait for it)."""
    group = CollaborationGroup.objects.filter(fault=fault).first()
    if group is None or group.deliveries.filter(channel=Channel.DINGTALK_GROUP_CREATE, status=Status.FAILED).exists():
        return None
    return group


def _sync(event, fault: Fault) -> Delivery | None:
    group = _usable_group(fault)
    if group is None:
        return None
    title, text = texts.sync(event, fault)
    return services.delivery_create(
        fault=fault,
        channel=Channel.DINGTALK_GROUP_MESSAGE,
        group=group,
        subject=title,
        body=text,
        idempotency_key=f"fault:{fault.pk}:sync:{event.seq}",
        # "Recovered" is the one message that must still go once the fault is resolved.
        stop_on_resolve=event.kind != "fault.recovered",
    )


# --- notifications to the business's recipients and groups -------------------------------


def _message_channel(person: Person) -> str | None:
    """The first of the person's paging methods that writes rather than rings, else any."""
    methods = [m for m in (person.paging_methods or []) if m in Channel.values and services.can_reach(person, m)]
    writing = [m for m in methods if m in REMINDER_CHANNELS]
    if writing:
        return writing[0]
    if services.can_reach(person, Channel.EMAIL):
        return Channel.EMAIL
    return methods[0] if methods else None


def _latest_progress(fault: Fault) -> str | None:
    latest = fault.updates.filter(kind=StatusUpdate.Kind.PROGRESS).order_by("-posted_at", "-pk").first()
    return latest.body if latest else None


def notification_round(*, fault: Fault, round, final: bool = False) -> list[Delivery]:
    """Tell the affected business's recipients and groups the impact and the progress."""
    progress = _latest_progress(fault)
    worded: dict[str, tuple[str, str]] = {}

    def text(language: str) -> tuple[str, str]:
        if language not in worded:
            worded[language] = texts.notification(fault, language=language, progress=progress, final=final)
        return worded[language]

    params = {**services.message_params(fault), "status": "recovered" if final else fault.status}
    rows = []
    business = fault.affected_business
    for person in roster_selectors.notification_recipients(business=business):
        channel = _message_channel(person)
        if channel is None:
            continue
        subject, body = text(person.language)
        rows.append(
            services.delivery_create(
                fault=fault, channel=channel, person=person, subject=subject, body=body,
                payload={"params": params}, stop_on_resolve=not final,
                idempotency_key=f"fault:{fault.pk}:notify:{round}:person:{person.pk}",
            )
        )
    for group in roster_selectors.notification_groups(business=business):
        if group.kind == NotificationGroup.Kind.DINGTALK_ROBOT_WEBHOOK:
            channel, target = Channel.DINGTALK_ROBOT, group.webhook_url
        else:
            channel, target = Channel.DINGTALK_GROUP_MESSAGE, group.open_conversation_id
        payload = {"notification_group": group.pk, "group_name": group.name}
        if not target:
            continue
        subject, body = text(texts.group_language())
        rows.append(
            services.delivery_create(
                fault=fault, channel=channel, target=target, subject=subject, body=body, payload=payload,
                stop_on_resolve=not final, idempotency_key=f"fault:{fault.pk}:notify:{round}:group:{group.pk}",
            )
        )
    return rows


# --- engagements: dialling until check-in --------------------------------------------------


def engagement_open(*, fault: Fault, person: Person, reason: str) -> Engagement:
    """Pull `person` in: the scheduler pages him now and follows up until he checks in."""
    now = timezone.now()
    has_role = _active_roles(fault.pk, person.pk).exists()
    engagement, created = Engagement.objects.get_or_create(
        fault=fault,
        person=person,
        defaults={"reason": reason, "needs_role": not has_role, "created_at": now, "next_check_at": now},
    )
    if created:
        return engagement
    if engagement.ended_at is not None and has_role and not _checked_in(fault.pk, person.pk):
        # He had checked in (or been let go) and now holds a new role: a new round of pages.
        Engagement.objects.filter(pk=engagement.pk).update(
            round=engagement.round + 1, reason=reason, ended_at=None, end_reason="", checked_in_at=None,
            paged_at=None, repaged_at=None, escalations=0, next_check_at=now, needs_role=False,
        )
    elif has_role and engagement.needs_role:
        Engagement.objects.filter(pk=engagement.pk).update(needs_role=False)
    engagement.refresh_from_db()
    return engagement


def _role_codes(fault_id: int, person_id: int) -> list[str]:
    """The person's active roles on the fault, commander first; empty for a contact without one yet."""
    codes = set(_active_roles(fault_id, person_id).values_list("role", flat=True))
    return [code for code in Role.values if code in codes]


def _page(e: Engagement, n: int, *, again: bool = False) -> Delivery | None:
    fault, person = e.fault, e.person
    subject, body = texts.page(fault, language=person.language, roles=_role_codes(fault.pk, person.pk), again=again)
    return services.person_page(
        fault=fault, person=person, page_key=f"fault:{fault.pk}:engage:{e.person_id}:{e.round}:{n}",
        subject=subject, body=body,
    )


def _escalation_schedule(fault: Fault, now) -> list:
    # Every page of the policy, repeats included, in order of `after`.
    return roster_selectors.escalation_due(business=fault.affected_business, waited=timedelta(days=3650), at=now)


def _escalate(e: Engagement, waited: timedelta, now) -> list[dict]:
    """Take the escalation pages that have come due since the last look; returns who was paged."""
    fault = e.fault
    due = roster_selectors.escalation_due(business=fault.affected_business, waited=waited, at=now)
    paged = []
    for index, page in enumerate(due[e.escalations:], start=e.escalations):
        step = {"step": index + 1, "after_minutes": int(page.after.total_seconds() // 60), "people": []}
        for target in page.people:
            if target.pk == e.person_id:
                continue
            subject, body = texts.escalation(
                fault, language=target.language, absent=e.person.name, roles=_role_codes(fault.pk, e.person_id),
                minutes=int(waited.total_seconds() // 60),
            )
            services.person_page(
                fault=fault, person=target,
                page_key=f"fault:{fault.pk}:escalate:{e.person_id}:{e.round}:{index}:{target.pk}",
                subject=subject, body=body,
            )
            step["people"].append(_ref(target))
        if not page.people:
            step["reason"] = page.reason
        paged.append(step)
    e.escalations = len(due)
    return paged


def _next_escalation_at(e: Engagement, now):
    later = [p.after for p in _escalation_schedule(e.fault, now)[e.escalations:]]
    return e.paged_at + later[0] if later else None


def _next_commander(fault: Fault, now) -> Person | None:
    """The first candidate of the level's commander rule who has not been commander of this fault."""
    rule = CommanderRule.objects.filter(level=fault.level).first()
    if rule is None:
        return None
    tried = set(RoleAssignment.objects.filter(fault=fault, role=Role.COMMANDER).values_list("person_id", flat=True))
    for candidate in rule.candidates.all():
        people, _ = roster_selectors.resolve_target(target=candidate, business=fault.affected_business, at=now)
        for person in people:
            if person.pk not in tried:
                return person
    return None


@transaction.atomic
def engagement_follow_up(*, engagement_id: int) -> str | None:
    """Take the next step for one engagement that is due; returns what was done."""
    now = timezone.now()
    e = services.lock_after_its_fault(
        Engagement.objects.select_related("fault", "person").filter(
            pk=engagement_id, ended_at__isnull=True, next_check_at__lte=now
        )
    )
    if e is None:
        return None
    fault, person = e.fault, e.person
    if not fault.is_open:
        Engagement.objects.filter(pk=e.pk).update(ended_at=now, end_reason=f"the fault is {fault.status}", next_check_at=None)
        return "ended"
    if _checked_in(fault.pk, person.pk):
        Engagement.objects.filter(pk=e.pk).update(checked_in_at=now, ended_at=now, end_reason="checked in", next_check_at=None)
        return "checked in"
    if e.needs_role and not _active_roles(fault.pk, person.pk).exists():
        # Only someone with a role can check in; an emergency contact is an emergency handler.
        Engagement.objects.filter(pk=e.pk).update(needs_role=False)
        incident_services.role_assign(fault=fault, person=person, role=Role.EMERGENCY_HANDLER, actor=None)
        e.refresh_from_db()
    sla = sla_for(fault)
    if e.paged_at is None:
        _page(e, 1)
        Engagement.objects.filter(pk=e.pk).update(paged_at=now, next_check_at=now + sla.check_in_within)
        return "paged"
    waited = now - e.paged_at
    if e.repaged_at is None:
        if waited < sla.check_in_within:
            Engagement.objects.filter(pk=e.pk).update(next_check_at=e.paged_at + sla.check_in_within)
            return None
        # The check-in SLA is missed: page again, take the policy's next step, replace a commander.
        minutes = int(sla.check_in_within.total_seconds() // 60)
        is_commander = RoleAssignment.objects.filter(
            fault=fault, person=person, role=Role.COMMANDER, ended_at__isnull=True
        ).exists()
        successor = _next_commander(fault, now) if is_commander else None
        # A commander who is about to be replaced is not paged again: his pages stop with the role.
        if successor is None:
            _page(e, 2, again=True)
        escalated = _escalate(e, waited, now)
        e.repaged_at = now
        next_at = _next_escalation_at(e, now)
        Engagement.objects.filter(pk=e.pk).update(repaged_at=now, escalations=e.escalations, next_check_at=next_at)
        text = f"{person.name} ({e.reason}) has not checked in within {minutes} min" + (
            "" if successor else ": paged again"
        )
        names = [p["name"] for step in escalated for p in step["people"]]
        if names:
            text += f"{';' if successor is None else ':'} escalated to {', '.join(names)}"
        if successor is not None:
            text += f"; {successor.name} takes over as commander"
        elif is_commander:
            text += "; no other commander candidate is available"
        incident_services.sla_breach_record(
            fault=fault, what="check_in", text=text,
            data={"person": _ref(person), "waited_seconds": int(waited.total_seconds()), "repaged": successor is None,
                  "escalation": escalated, "successor": _ref(successor) if successor else None},
        )
        if successor is not None:
            incident_services.role_assign(fault=fault, person=successor, role=Role.COMMANDER, actor=None)
        return "breached"
    escalated = _escalate(e, waited, now)
    Engagement.objects.filter(pk=e.pk).update(escalations=e.escalations, next_check_at=_next_escalation_at(e, now))
    if escalated:
        names = [p["name"] for step in escalated for p in step["people"]] or ["nobody"]
        incident_services.sla_breach_record(
            fault=fault, what="check_in",
            text=f"{person.name} has still not checked in after {int(waited.total_seconds() // 60)} min: escalated to {', '.join(names)}",
            data={"person": _ref(person), "waited_seconds": int(waited.total_seconds()), "escalation": escalated},
        )
        return "escalated"
    return None


# --- deadlines: repeats, task and progress reminders ---------------------------------------


def _remind(fault: Fault, person: Person, *, key: str, subject: str, body: str) -> Delivery | None:
    channel = _message_channel(person)
    if channel is None:
        return None
    return services.delivery_create(
        fault=fault, channel=channel, person=person, subject=subject, body=body,
        payload={"params": services.message_params(fault)}, idempotency_key=key,
    )


@transaction.atomic
def deadline_follow_up(*, deadline_id: int) -> str | None:
    now = timezone.now()
    d = services.lock_after_its_fault(
        Deadline.objects.select_related("fault", "task__assignee").filter(
            pk=deadline_id, done_at__isnull=True, due_at__lte=now
        )
    )
    if d is None:
        return None
    fault = d.fault
    if not fault.is_open:
        Deadline.objects.filter(pk=d.pk).update(done_at=now)
        return "ended"
    sla = sla_for(fault)
    if d.kind == Deadline.Kind.RENOTIFY:
        notification_round(fault=fault, round=d.count + 1)
        Deadline.objects.filter(pk=d.pk).update(count=d.count + 1, due_at=now + sla.renotify_every)
        return "renotified"
    if d.kind == Deadline.Kind.PROGRESS:
        return _progress_overdue(d, fault, sla, now)
    return _task_overdue(d, fault, sla, now)


def _progress_overdue(d: Deadline, fault: Fault, sla: Sla, now) -> str | None:
    latest = fault.updates.filter(kind=StatusUpdate.Kind.PROGRESS).order_by("-posted_at").first()
    since = latest.posted_at if latest else fault.declared_at
    if since + sla.progress_update_every > now:
        Deadline.objects.filter(pk=d.pk).update(due_at=since + sla.progress_update_every)
        return None
    minutes = int(sla.progress_update_every.total_seconds() // 60)
    reminded = []
    for person in dict.fromkeys(p for p in (_fault_handler(fault), _commander(fault)) if p is not None):
        subject, body = texts.progress_due(fault, language=person.language, minutes=minutes)
        _remind(fault, person, key=f"fault:{fault.pk}:progress:{d.count + 1}:{person.pk}", subject=subject, body=body)
        reminded.append(person)
    text = f"No progress update for {minutes} min" + (
        f": {' and '.join(p.name for p in reminded)} reminded" if reminded else ": nobody to remind"
    )
    incident_services.sla_breach_record(
        fault=fault, what="progress_update", text=text,
        data={"since": since.isoformat(), "reminded": [_ref(p) for p in reminded], "missed": d.count + 1},
    )
    Deadline.objects.filter(pk=d.pk).update(count=d.count + 1, due_at=now + sla.progress_update_every)
    return "breached"


def _task_overdue(d: Deadline, fault: Fault, sla: Sla, now) -> str | None:
    task = Task.objects.select_related("assignee").get(pk=d.task_id)
    if task.acknowledged_at is not None or task.status in (Task.Status.DONE, Task.Status.CANCELLED):
        Deadline.objects.filter(pk=d.pk).update(done_at=now)
        return None
    if d.stage == 0 and task.due_at > now:
        Deadline.objects.filter(pk=d.pk).update(due_at=task.due_at)  # the due time was moved
        return None
    assignee = task.assignee
    data = {"task": task.pk, "title": task.title, "assignee": _ref(assignee), "due_at": task.due_at.isoformat()}
    # Keyed by the due time too: once the commander moves it, a new reminder is a new message.
    due = int(task.due_at.timestamp())
    if d.stage == 0:
        subject, body = texts.task_waiting(fault, task, language=assignee.language)
        _remind(fault, assignee, key=f"fault:{fault.pk}:task:{task.pk}:reminder:{due}", subject=subject, body=body)
        incident_services.sla_reminder_record(
            fault=fault, what="task_response",
            text=f"Task “{task.title}” not acknowledged in time: {assignee.name} reminded", data=data,
        )
        Deadline.objects.filter(pk=d.pk).update(stage=1, due_at=now + sla.task_response_within)
        return "reminded"
    commander = _commander(fault)
    if commander is not None:
        subject, body = texts.task_unanswered(fault, task, language=commander.language, assignee=assignee.name)
        _remind(fault, commander, key=f"fault:{fault.pk}:task:{task.pk}:flagged:{due}", subject=subject, body=body)
    text = f"Task “{task.title}” still not acknowledged by {assignee.name}: " + (
        f"flagged to {commander.name}" if commander else "no commander to tell"
    )
    incident_services.sla_breach_record(
        fault=fault, what="task_response", text=text,
        data={**data, "flagged_to": _ref(commander) if commander else None},
    )
    Deadline.objects.filter(pk=d.pk).update(stage=2, done_at=now)
    return "breached"


# --- the scheduler's entry point ----------------------------------------------------------


def follow_ups_run(*, fault_id: int | None = None) -> dict:
    """Take every engagement and deadline that is due (of one fault, or all)."""
    now = timezone.now()
    engagements = Engagement.objects.filter(ended_at__isnull=True, next_check_at__lte=now)
    deadlines = Deadline.objects.filter(done_at__isnull=True, due_at__lte=now)
    if fault_id is not None:
        engagements, deadlines = engagements.filter(fault_id=fault_id), deadlines.filter(fault_id=fault_id)
    counts: dict[str, int] = {}
    # A step can make another due at once (a new commander to page): look again, a few times.
    for _ in range(5):
        steps = [
            engagement_follow_up(engagement_id=pk)
            for pk in list(engagements.order_by("next_check_at", "pk").values_list("pk", flat=True)[:500])
        ] + [
            deadline_follow_up(deadline_id=pk)
            for pk in list(deadlines.order_by("due_at", "pk").values_list("pk", flat=True)[:500])
        ]
        for done in filter(None, steps):
            counts[done] = counts.get(done, 0) + 1
        if not any(steps):
            break
    return counts

"""One notification round: the affected business's recipients and groups hear the impact
and the latest progress — at declaration, every "renotify every", and at recovery."""

from incidents.models import Fault, StatusUpdate
from roster import selectors as roster_selectors
from roster.models import NotificationGroup, Person

from .. import channels, texts
from ..models import Channel, Delivery
from ..outbox.rows import delivery_create

# Ways to remind someone of a deadline, gentlest first: a reminder is not a page.
WRITING_CHANNELS = (Channel.DINGTALK_DING_APP, Channel.ALIYUN_SMS, Channel.EMAIL, Channel.DINGTALK_DING_SMS)


def message_channel(person: Person) -> str | None:
    """The first of the person's paging methods that writes rather than rings, else any."""
    methods = [m for m in (person.paging_methods or []) if m in Channel.values and channels.can_reach(person, m)]
    writing = [m for m in methods if m in WRITING_CHANNELS]
    if writing:
        return writing[0]
    if channels.can_reach(person, Channel.EMAIL):
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

    params = {**channels.message_params(fault), "status": "recovered" if final else fault.status}
    rows = []
    business = fault.affected_business
    for person in roster_selectors.notification_recipients(business=business):
        channel = message_channel(person)
        if channel is None:
            continue
        subject, body = text(person.language)
        rows.append(
            delivery_create(
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
            delivery_create(
                fault=fault, channel=channel, target=target, subject=subject, body=body, payload=payload,
                stop_on_resolve=not final, idempotency_key=f"fault:{fault.pk}:notify:{round}:group:{group.pk}",
            )
        )
    return rows

"""Reads for the war-room page and the API. Each is bounded: a fault's length never grows a page."""

from .models import Channel, Delivery, SandboxMessage


def latest_deliveries(fault, limit: int) -> list[Delivery]:
    """The fault's newest `limit` deliveries, newest first, with the person of each row."""
    return list(Delivery.objects.filter(fault=fault).select_related("person").order_by("-created_at", "-pk")[:limit])


def pages_of(fault, person_ids) -> list[Delivery]:
    """The pages to these people in the fault, oldest first (the check-in board's paging state)."""
    return list(
        Delivery.objects.filter(fault=fault, purpose=Delivery.Purpose.PAGE, person_id__in=list(person_ids))
        .select_related("person")
        .order_by("created_at", "pk")
    )


def group_calls(fault) -> list[Delivery]:
    """The group's creation and membership rows, oldest first."""
    channels = (Channel.DINGTALK_GROUP_CREATE, Channel.DINGTALK_GROUP_MEMBER_ADD)
    return list(
        Delivery.objects.filter(fault=fault, channel__in=channels).select_related("person").order_by("created_at", "pk")
    )


def latest_sandbox_messages(fault, limit: int) -> list[SandboxMessage]:
    """The fault's newest `limit` sandbox messages, newest first."""
    return list(SandboxMessage.objects.filter(fault=fault).order_by("-created_at", "-pk")[:limit])


def latest_card(fault) -> SandboxMessage | None:
    return SandboxMessage.objects.filter(fault=fault, channel=Channel.DINGTALK_CARD).order_by("-created_at", "-pk").first()

"""Reads for the war-room page and the API."""

from .models import Delivery, SandboxMessage


def deliveries_for_fault(fault) -> list[Delivery]:
    """The fault's delivery log, oldest first, with the person of each row."""
    return list(Delivery.objects.filter(fault=fault).select_related("person").order_by("created_at", "pk"))


def sandbox_messages_for_fault(fault) -> list[SandboxMessage]:
    return list(SandboxMessage.objects.filter(fault=fault).order_by("created_at", "pk"))

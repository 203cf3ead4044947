"""Stands in for every provider that has no credentials: keeps the message in the
database, where the war-room page and the admin show it. Never fails."""

from django.utils import timezone

from .base import Sent


def send(delivery, *, address: str = "") -> Sent:
    from notifications.models import SandboxMessage

    message, _ = SandboxMessage.objects.get_or_create(
        delivery=delivery,
        defaults={
            "fault_id": delivery.fault_id,
            "channel": delivery.channel,
            "recipient": delivery.recipient_label,
            "address": address,
            "subject": delivery.subject,
            "body": delivery.body,
            "payload": delivery.payload,
            "created_at": timezone.now(),
        },
    )
    return Sent(provider_id=f"sandbox-{message.pk}", delivered=True)

"""Receipts: the provider tells us, later, whether an SMS arrived or a call was answered."""

from django.db import transaction
from django.utils import timezone

from ..models import Channel, Delivery
from .attempts import label, outcome_record, page_next
from .rows import lock_after_its_fault

Status = Delivery.Status


@transaction.atomic
def delivery_receipt_record(*, provider_key: str, channel: str, delivered: bool, detail: str, receipt: dict) -> bool:
    """Settle a sent message from the provider's receipt. Repeated receipts change nothing.

    Returns False when no such message exists (an unknown out_id).
    """
    d = lock_after_its_fault(
        Delivery.objects.select_related("fault", "person").filter(provider_key=provider_key, channel=channel)
    )
    if d is None:
        return False
    if d.status not in (Status.SENT, Status.SENDING):
        return True  # already settled (or never sent): a repeated push
    now = timezone.now()
    status = Status.DELIVERED if delivered else Status.FAILED
    Delivery.objects.filter(pk=d.pk).update(
        status=status, receipt=receipt, finished_at=now, lease_until=None, receipt_due_at=None,
        last_error="" if delivered else detail,
    )
    if channel == Channel.ALIYUN_VOICE:
        what = "answered" if delivered else "not answered"
    else:
        what = "delivered" if delivered else "not delivered"
    text = f"{label(d)} {what}" + (f" ({detail})" if detail and not delivered else "")
    outcome_record(d, text, status=status, receipt=receipt)
    if not delivered and d.purpose == Delivery.Purpose.PAGE:
        page_next(d)
    return True


def sms_report_record(item: dict) -> bool:
    success = item.get("success") in (True, "true", "True")
    return delivery_receipt_record(
        provider_key=str(item.get("out_id") or ""),
        channel=Channel.ALIYUN_SMS,
        delivered=success,
        detail=str(item.get("err_msg") or item.get("err_code") or ""),
        receipt=item,
    )


def voice_report_record(item: dict) -> bool:
    # start_time is when the callee picked up, empty when nobody did; 200000 is a normal
    # call listened to and hung up.
    answered = bool(item.get("start_time")) or str(item.get("status_code")) == "200000"
    return delivery_receipt_record(
        provider_key=str(item.get("out_id") or ""),
        channel=Channel.ALIYUN_VOICE,
        delivered=answered,
        detail=str(item.get("status_msg") or item.get("status_code") or ""),
        receipt=item,
    )

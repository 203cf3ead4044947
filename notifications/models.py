from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class Channel(models.TextChoices):
    """How one message travels. The first six are also a person's paging methods."""

    DINGTALK_DING_PHONE = "dingtalk_ding_phone", _("DING call")
    DINGTALK_DING_SMS = "dingtalk_ding_sms", _("DING SMS")
    DINGTALK_DING_APP = "dingtalk_ding_app", _("DING")
    ALIYUN_VOICE = "aliyun_voice", _("voice call")
    ALIYUN_SMS = "aliyun_sms", _("SMS")
    EMAIL = "email", _("email")
    DINGTALK_GROUP_MESSAGE = "dingtalk_group_message", _("group message")
    DINGTALK_CARD = "dingtalk_card", _("check-in card")
    WEBHOOK = "webhook", _("webhook")


# Channels whose provider de-duplicates a repeated request by a key we send (outTrackId,
# the webhook's X-WarRoom-Delivery). Only these may be re-sent after an ambiguous attempt.
# DING, the robot group message, SMS, voice and email have no such key: OutId only
# correlates receipts, it does not stop a second SMS.
KEYED_CHANNELS = {Channel.DINGTALK_CARD, Channel.WEBHOOK}

# Channels whose outcome arrives later as a receipt (SmsReport / VoiceReport).
RECEIPT_CHANNELS = {Channel.ALIYUN_SMS, Channel.ALIYUN_VOICE}


class Delivery(models.Model):
    """One message in the outbox: written before anything is sent, updated by the worker."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        SENDING = "sending", _("Sending")
        # Accepted by the provider (or, when `unconfirmed`, possibly sent: see below).
        SENT = "sent", _("Sent")
        DELIVERED = "delivered", _("Delivered")
        FAILED = "failed", _("Failed")
        CANCELLED = "cancelled", _("Cancelled")

    class Purpose(models.TextChoices):
        # A page walks the person's paging methods: a failure creates the next method's row.
        PAGE = "page", _("Page")
        MESSAGE = "message", _("Message")

    FINAL_STATUSES = (Status.DELIVERED, Status.FAILED, Status.CANCELLED)

    fault = models.ForeignKey("incidents.Fault", on_delete=models.CASCADE, related_name="deliveries")
    person = models.ForeignKey(
        "roster.Person", null=True, blank=True, on_delete=models.PROTECT, related_name="deliveries"
    )
    # Where it goes when not to a person: an openConversationId, a webhook URL, an address.
    target = models.CharField(_("target"), max_length=500, blank=True)
    channel = models.CharField(_("channel"), max_length=32, choices=Channel.choices)
    # The transport that took it: the provider's module, or "sandbox" when the provider is off.
    transport = models.CharField(_("transport"), max_length=32, blank=True)
    purpose = models.CharField(max_length=16, choices=Purpose.choices, default=Purpose.MESSAGE)
    subject = models.CharField(_("subject"), max_length=200, blank=True)
    body = models.TextField(_("body"), blank=True)
    # Provider-specific parameters: template params, card params, @-mentions.
    payload = models.JSONField(default=dict, blank=True)
    # Ours: a second request to queue the same message returns the existing row.
    idempotency_key = models.CharField(max_length=200, unique=True)
    # Sent to the provider: outTrackId, OutId (≤15 bytes), the webhook's delivery id.
    provider_key = models.CharField(max_length=64, unique=True)
    # Paging: the position of `channel` in the person's paging methods, and the page it belongs to.
    page_key = models.CharField(max_length=160, blank=True, db_index=True)
    method_index = models.PositiveSmallIntegerField(null=True, blank=True)
    # Pages and repeats stop when the fault is resolved; a "recovered" message does not.
    stop_on_resolve = models.BooleanField(default=True)

    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    max_attempts = models.PositiveSmallIntegerField(default=4)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # When a task was last queued for this row; the sweeper re-queues what was lost.
    queued_at = models.DateTimeField(null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    lease_token = models.CharField(max_length=32, blank=True)
    # Set just before the request leaves: a reclaimed row with this set may have been sent.
    dispatched_at = models.DateTimeField(null=True, blank=True)
    # The request may have reached the provider but we never heard back (timeout, killed
    # worker). Not re-sent on a channel without a key; a receipt may still confirm it.
    unconfirmed = models.BooleanField(default=False)
    receipt_due_at = models.DateTimeField(null=True, blank=True)
    provider_id = models.CharField(_("provider id"), max_length=128, blank=True, db_index=True)
    receipt = models.JSONField(null=True, blank=True)
    last_error = models.TextField(_("last error"), blank=True)
    created_at = models.DateTimeField(_("created at"))
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    class Meta:
        ordering = ["created_at", "pk"]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"]),
            models.Index(fields=["status", "lease_until"]),
            models.Index(fields=["fault", "status"]),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(person__isnull=False) | ~Q(target=""), name="delivery_has_a_recipient"
            ),
        ]
        verbose_name = _("delivery")
        verbose_name_plural = _("deliveries")

    def __str__(self):
        return f"{self.get_channel_display()} to {self.recipient_label} ({self.status})"

    @property
    def recipient_label(self) -> str:
        if self.person_id is not None:
            return self.person.name
        if self.channel in (Channel.DINGTALK_GROUP_MESSAGE, Channel.DINGTALK_CARD):
            return "the group"
        return self.target

    @property
    def has_provider_key(self) -> bool:
        return self.channel in KEYED_CHANNELS


class SandboxMessage(models.Model):
    """A message the sandbox transport took instead of a real provider; shown in the UI."""

    delivery = models.OneToOneField(Delivery, on_delete=models.CASCADE, related_name="sandbox_message")
    fault = models.ForeignKey("incidents.Fault", on_delete=models.CASCADE, related_name="sandbox_messages")
    channel = models.CharField(max_length=32, choices=Channel.choices)
    recipient = models.CharField(max_length=200)
    address = models.CharField(max_length=500, blank=True)
    subject = models.CharField(max_length=200, blank=True)
    body = models.TextField(blank=True)
    payload = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["created_at", "pk"]
        verbose_name = _("sandbox message")

    def __str__(self):
        return f"{self.get_channel_display()} to {self.recipient}"

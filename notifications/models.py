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
    # A group's custom robot (webhook URL + signing secret), for notification groups.
    DINGTALK_ROBOT = "dingtalk_robot", _("robot message")
    # Not messages, but calls with the same guarantees: the fault's scene group, its
    # members, and the one-click video conference.
    DINGTALK_GROUP_CREATE = "dingtalk_group_create", _("group creation")
    DINGTALK_GROUP_MEMBER_ADD = "dingtalk_group_member_add", _("group membership")
    DINGTALK_CONFERENCE = "dingtalk_conference", _("video conference")


# Channels whose provider de-duplicates a repeated request by a key we send (outTrackId,
# the webhook's X-WarRoom-Delivery, the scene group's uuid), or where repeating changes
# nothing (adding a member who is already in the group). Only these may be re-sent after
# an ambiguous attempt. DING, the app robot's group message, the custom robot, SMS, voice,
# email and the conference have no such key: OutId only correlates receipts, it does not
# stop a second SMS, and nothing documents that the custom robot de-duplicates by msgUuid.
KEYED_CHANNELS = {
    Channel.DINGTALK_CARD,
    Channel.WEBHOOK,
    Channel.DINGTALK_GROUP_CREATE,
    Channel.DINGTALK_GROUP_MEMBER_ADD,
}

# Channels that speak in the fault's collaboration group and wait until it exists.
GROUP_CHANNELS = {Channel.DINGTALK_GROUP_MESSAGE, Channel.DINGTALK_CARD, Channel.DINGTALK_GROUP_MEMBER_ADD}

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
    # Set for what goes to (or builds) the fault's collaboration group; such a row waits
    # until the group exists and then takes its openConversationId as `target`.
    group = models.ForeignKey(
        "CollaborationGroup", null=True, blank=True, on_delete=models.CASCADE, related_name="deliveries"
    )
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
    # A page that went through every method without reaching the person starts over at
    # the first one (after a pause): a provider outage is outlasted, not given up on.
    page_cycle = models.PositiveSmallIntegerField(default=0)
    # Pages and repeats stop when the fault is resolved; a "recovered" message does not.
    stop_on_resolve = models.BooleanField(default=True)

    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    # A page tries one method this many times, then goes on with the next method.
    max_attempts = models.PositiveSmallIntegerField(default=4)
    # A message (not a page) is retried, with capped backoff, until it goes through or
    # until this moment; pages use max_attempts and the person's next method instead.
    retry_until = models.DateTimeField(null=True, blank=True)
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
    # An attempt on a keyed channel may have reached the provider: the row is settled by
    # sending again under the same key, never cancelled blind (the group may exist).
    may_have_left = models.BooleanField(default=False)
    # The provider refused it for good (bad number, no such user), as opposed to failing
    # for now (outage, throttling): only the second kind is worth another cycle of pages.
    refused = models.BooleanField(default=False)
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
                condition=Q(person__isnull=False) | ~Q(target="") | Q(group__isnull=False),
                name="delivery_has_a_recipient",
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
        if self.payload.get("group_name"):
            # A business's notification group: its name, never its webhook URL (which holds a token).
            return self.payload["group_name"]
        if self.channel in (Channel.DINGTALK_GROUP_MESSAGE, Channel.DINGTALK_CARD, Channel.DINGTALK_GROUP_CREATE):
            return "the group"
        if self.channel == Channel.DINGTALK_CONFERENCE:
            return "the checked-in members"
        return self.target

    @property
    def has_provider_key(self) -> bool:
        return self.channel in KEYED_CHANNELS


class CollaborationGroup(models.Model):
    """The fault's DingTalk scene group: one per fault.

    The row is written with the declaration; a DINGTALK_GROUP_CREATE delivery then creates
    the group with the same guarantees as any message. `uuid` is drawn once, here, and sent
    with every attempt, so that a retried create returns the group the first one made.
    """

    fault = models.OneToOneField("incidents.Fault", on_delete=models.CASCADE, related_name="collaboration_group")
    uuid = models.CharField(max_length=64, unique=True)
    title = models.CharField(_("title"), max_length=30)
    owner = models.ForeignKey("roster.Person", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # Who was asked for at creation: [{"id", "name", "user_id"}]; later joiners are
    # DINGTALK_GROUP_MEMBER_ADD deliveries.
    members = models.JSONField(default=list, blank=True)
    open_conversation_id = models.CharField(_("openConversationId"), max_length=128, blank=True)
    chat_id = models.CharField(max_length=128, blank=True)
    created_at = models.DateTimeField(_("created at"))
    ready_at = models.DateTimeField(_("ready at"), null=True, blank=True)

    class Meta:
        verbose_name = _("collaboration group")

    def __str__(self):
        return f"{self.title} ({self.open_conversation_id or 'not created yet'})"

    @property
    def is_ready(self) -> bool:
        return bool(self.open_conversation_id)

    def has_member(self, person_id: int) -> bool:
        return any(m.get("id") == person_id for m in self.members)


class Engagement(models.Model):
    """One person pulled into a fault: paged until he checks in, then paged again and escalated.

    The scheduler looks at the row when `next_check_at` has passed; `round` grows when a
    person who had checked in is given a new role and must check in again.
    """

    fault = models.ForeignKey("incidents.Fault", on_delete=models.CASCADE, related_name="engagements")
    person = models.ForeignKey("roster.Person", on_delete=models.PROTECT, related_name="engagements")
    # Why he was pulled in: "commander", "fault handler", "emergency contact of Payments".
    reason = models.CharField(max_length=200)
    # An emergency contact has no role yet; the scheduler makes him an emergency handler so
    # that he can check in.
    needs_role = models.BooleanField(default=False)
    round = models.PositiveSmallIntegerField(default=1)
    created_at = models.DateTimeField()
    paged_at = models.DateTimeField(null=True, blank=True)
    repaged_at = models.DateTimeField(null=True, blank=True)
    # How many pages of the business's escalation policy have gone out for this round.
    escalations = models.PositiveSmallIntegerField(default=0)
    next_check_at = models.DateTimeField(null=True, blank=True)
    checked_in_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    end_reason = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["created_at", "pk"]
        constraints = [models.UniqueConstraint(fields=["fault", "person"], name="one_engagement_per_person_and_fault")]
        indexes = [models.Index(fields=["ended_at", "next_check_at"])]
        verbose_name = _("engagement")

    def __str__(self):
        return f"{self.person} in fault #{self.fault_id} ({self.reason})"


class Deadline(models.Model):
    """A moment at which the scheduler must look at a fault again.

    renotify: the next impact-and-progress notification to the business's recipients;
    progress: a progress update is due (since the last one, or the declaration);
    task: a task must be acknowledged (stage 0 reminds the assignee, stage 1 tells the commander).
    """

    class Kind(models.TextChoices):
        RENOTIFY = "renotify", _("Renotify")
        PROGRESS = "progress", _("Progress update")
        TASK = "task", _("Task response")

    fault = models.ForeignKey("incidents.Fault", on_delete=models.CASCADE, related_name="deadlines")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    task = models.ForeignKey("incidents.Task", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=80, unique=True)
    due_at = models.DateTimeField()
    stage = models.PositiveSmallIntegerField(default=0)
    # How many times it has fired (the notification round, the missed progress periods).
    count = models.PositiveIntegerField(default=0)
    done_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["due_at", "pk"]
        indexes = [models.Index(fields=["done_at", "due_at"])]
        verbose_name = _("deadline")

    def __str__(self):
        return f"{self.key} due {self.due_at:%Y-%m-%d %H:%M:%S}"


class ProviderState(models.Model):
    """How one transport is doing, from the outcomes of every worker's attempts.

    Consecutive failures that are not refusals (5xx, timeouts, connection errors), with no
    success in between, mean the provider is failing for everyone: an outage, put on the
    timeline of every open fault, on /healthz and on the page. While it lasts its messages
    are held rather than sent into the void (a timeout would leave them ambiguous), one
    probe at a time tests the provider, and nobody is escalated or replaced for a silence
    it caused; the first success ends it.
    """

    transport = models.CharField(max_length=32, unique=True)
    failures = models.PositiveIntegerField(default=0)
    failing_since = models.DateTimeField(null=True, blank=True)
    last_failure_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    outage_since = models.DateTimeField(null=True, blank=True)
    # During an outage messages are held, not sent: one attempt per NOTIFY_OUTAGE_PROBE_EVERY
    # goes through as a probe, and its success ends the outage.
    probe_at = models.DateTimeField(null=True, blank=True)
    # When the last outage ended: whoever was paged during it gets his check-in SLA from here.
    outage_ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("provider state")

    def __str__(self):
        return f"{self.transport}: " + (f"outage since {self.outage_since:%H:%M:%S}" if self.outage_since else "ok")


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

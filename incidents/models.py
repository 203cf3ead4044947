from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class Level(models.IntegerChoices):
    """Fault level; a smaller number is more severe. Plans use the same scale for impact."""

    P1 = 1, "P1"
    P2 = 2, "P2"
    P3 = 3, "P3"
    P4 = 4, "P4"


def is_more_severe(level: int, than: int) -> bool:
    return level < than


class SLAPolicy(models.Model):
    """How fast each step must happen at one fault level."""

    level = models.PositiveSmallIntegerField(_("level"), choices=Level.choices, unique=True)
    notify_within = models.DurationField(_("notify within"))
    check_in_within = models.DurationField(_("check in within"))
    task_response_within = models.DurationField(_("task response within"))
    progress_update_every = models.DurationField(_("progress update every"))
    renotify_every = models.DurationField(_("renotify every"))

    class Meta:
        ordering = ["level"]
        verbose_name = _("SLA policy")
        verbose_name_plural = _("SLA policies")

    def __str__(self):
        return f"SLA {self.get_level_display()}"


class Fault(models.Model):
    class Status(models.TextChoices):
        DECLARED = "declared", _("Declared")
        MITIGATED = "mitigated", _("Mitigated")
        RECOVERED = "recovered", _("Recovered")
        CLOSED = "closed", _("Closed")

    # A fault is open until it is recovered: repeats and dialling stop at recovery.
    OPEN_STATUSES = (Status.DECLARED, Status.MITIGATED)

    title = models.CharField(_("title"), max_length=200)
    level = models.PositiveSmallIntegerField(_("level"), choices=Level.choices)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.DECLARED)
    impact = models.TextField(_("impact"), blank=True)
    affected_business = models.ForeignKey(
        "roster.Business", on_delete=models.PROTECT, related_name="faults", verbose_name=_("affected business")
    )
    suspected_cause_businesses = models.ManyToManyField(
        "roster.Business", blank=True, related_name="suspected_in_faults", verbose_name=_("suspected-cause businesses")
    )
    declared_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    detected_at = models.DateTimeField(_("detected at"))
    declared_at = models.DateTimeField(_("declared at"))
    first_check_in_at = models.DateTimeField(_("first check-in at"), null=True, blank=True)
    mitigated_at = models.DateTimeField(_("mitigated at"), null=True, blank=True)
    recovered_at = models.DateTimeField(_("recovered at"), null=True, blank=True)
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)
    # The seq of the newest timeline event; bumped under the fault's row lock.
    last_seq = models.PositiveIntegerField(default=0, editable=False)

    class Meta:
        ordering = ["-declared_at"]
        permissions = [("manage_fault", "Can run any fault (roles, level, plans, status)")]
        indexes = [models.Index(fields=["status", "level"])]
        verbose_name = _("fault")
        verbose_name_plural = _("faults")

    def __str__(self):
        return f"#{self.pk} {self.get_level_display()} {self.title}"

    @property
    def is_open(self) -> bool:
        return self.status in self.OPEN_STATUSES


class RoleAssignment(models.Model):
    class Role(models.TextChoices):
        COMMANDER = "commander", _("Commander")
        FAULT_HANDLER = "fault_handler", _("Fault handler")
        EMERGENCY_HANDLER = "emergency_handler", _("Emergency handler")

    fault = models.ForeignKey(Fault, on_delete=models.CASCADE, related_name="roles")
    person = models.ForeignKey("roster.Person", on_delete=models.PROTECT, related_name="fault_roles")
    role = models.CharField(_("role"), max_length=24, choices=Role.choices)
    assigned_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    assigned_at = models.DateTimeField(_("assigned at"))
    checked_in_at = models.DateTimeField(_("checked in at"), null=True, blank=True)
    # Set when the role passes to someone else (a new commander); the row stays for review.
    ended_at = models.DateTimeField(_("ended at"), null=True, blank=True)

    class Meta:
        ordering = ["assigned_at", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["fault"],
                condition=Q(role="commander", ended_at__isnull=True),
                name="one_active_commander_per_fault",
            ),
            models.UniqueConstraint(
                fields=["fault", "person", "role"],
                condition=Q(ended_at__isnull=True),
                name="one_active_assignment_per_person_and_role",
            ),
        ]
        verbose_name = _("role assignment")

    def __str__(self):
        return f"{self.person} as {self.get_role_display()} of fault #{self.fault_id}"


class Task(models.Model):
    class Kind(models.TextChoices):
        INVESTIGATE = "investigate", _("Investigate the cause")
        RECOVER = "recover", _("Recover quickly")
        SYNC = "sync", _("Synchronise progress")
        OTHER = "other", _("Other")

    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        ACKNOWLEDGED = "acknowledged", _("Acknowledged")
        DONE = "done", _("Done")
        CANCELLED = "cancelled", _("Cancelled")

    fault = models.ForeignKey(Fault, on_delete=models.CASCADE, related_name="tasks")
    assignee = models.ForeignKey("roster.Person", on_delete=models.PROTECT, related_name="tasks")
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    title = models.CharField(_("title"), max_length=200)
    description = models.TextField(_("description"), blank=True)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.OPEN)
    progress = models.TextField(_("latest progress"), blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(_("created at"))
    due_at = models.DateTimeField(_("due at"))
    acknowledged_at = models.DateTimeField(_("acknowledged at"), null=True, blank=True)
    completed_at = models.DateTimeField(_("completed at"), null=True, blank=True)

    class Meta:
        ordering = ["created_at", "pk"]
        verbose_name = _("task")

    def __str__(self):
        return self.title


class MitigationPlan(models.Model):
    class Status(models.TextChoices):
        PROPOSED = "proposed", _("Proposed")
        APPROVED = "approved", _("Approved")
        REJECTED = "rejected", _("Rejected")
        EXECUTED = "executed", _("Executed")

    fault = models.ForeignKey(Fault, on_delete=models.CASCADE, related_name="plans")
    description = models.TextField(_("description"))
    expected_impact = models.PositiveSmallIntegerField(
        _("expected impact"), choices=Level.choices, help_text=_("On the fault's own scale: P1 is the most severe.")
    )
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.PROPOSED)
    proposed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    proposed_at = models.DateTimeField(_("proposed at"))
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)
    rejection_reason = models.TextField(_("rejection reason"), blank=True)
    executed_at = models.DateTimeField(_("executed at"), null=True, blank=True)

    class Meta:
        ordering = ["proposed_at", "pk"]
        verbose_name = _("mitigation plan")

    def __str__(self):
        return self.description[:60]


class StatusUpdate(models.Model):
    class Kind(models.TextChoices):
        PROGRESS = "progress", _("Progress update")
        NOTE = "note", _("Troubleshooting note")

    fault = models.ForeignKey(Fault, on_delete=models.CASCADE, related_name="updates")
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices, default=Kind.PROGRESS)
    body = models.TextField(_("text"))
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    posted_at = models.DateTimeField(_("posted at"))

    class Meta:
        ordering = ["posted_at", "pk"]
        verbose_name = _("status update")

    def __str__(self):
        return self.body[:60]


class TimelineEvent(models.Model):
    """One append-only entry of a fault's history. `seq` grows by one per fault."""

    fault = models.ForeignKey(Fault, on_delete=models.CASCADE, related_name="timeline")
    seq = models.PositiveIntegerField()
    kind = models.CharField(max_length=48)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Who did it, as shown to readers; kept even if the user is later deleted ("system" for the product).
    actor_label = models.CharField(max_length=150)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["fault", "seq"]
        constraints = [models.UniqueConstraint(fields=["fault", "seq"], name="one_seq_per_fault")]
        verbose_name = _("timeline event")

    def __str__(self):
        return f"#{self.fault_id}.{self.seq} {self.kind}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise ValueError("Timeline events are append-only.")
        super().save(*args, **kwargs)

    def as_message(self) -> dict:
        """The event as the live page and the API receive it."""
        return {
            "fault": self.fault_id,
            "seq": self.seq,
            "kind": self.kind,
            "actor": self.actor_label,
            "data": self.data,
            "at": self.created_at.isoformat(),
        }


class RecoverySummary(models.Model):
    """The recovery metrics of one fault, computed when it recovers (again, if reopened)."""

    fault = models.OneToOneField(Fault, on_delete=models.CASCADE, related_name="summary")
    computed_at = models.DateTimeField(_("computed at"))
    level = models.PositiveSmallIntegerField(_("level"), choices=Level.choices)
    # Seconds from detection; kept as columns so that trends can be aggregated in SQL.
    time_to_declare = models.FloatField(null=True, blank=True)
    time_to_notify = models.FloatField(null=True, blank=True)
    time_to_check_in = models.FloatField(null=True, blank=True)
    time_to_engage = models.FloatField(null=True, blank=True)
    time_to_mitigate = models.FloatField(null=True, blank=True)
    time_to_recover = models.FloatField(null=True, blank=True)
    sla_met = models.PositiveIntegerField(default=0)
    sla_total = models.PositiveIntegerField(default=0)
    data = models.JSONField(default=dict)

    class Meta:
        ordering = ["-computed_at"]
        verbose_name = _("recovery summary")
        verbose_name_plural = _("recovery summaries")

    def __str__(self):
        return f"Recovery of fault #{self.fault_id}"

    @property
    def sla_compliance(self) -> float | None:
        return self.sla_met / self.sla_total if self.sla_total else None

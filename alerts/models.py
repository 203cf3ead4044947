"""How monitoring reaches us: integrations, their level rules, and every alert received."""

import secrets
from datetime import timedelta

from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from incidents.models import Fault, Level
from roster.models import Business


# A heartbeat integration that names no interval or grace of its own.
HEARTBEAT_INTERVAL = timedelta(minutes=5)
HEARTBEAT_GRACE = timedelta(minutes=1)


def outcome(level: int | None) -> str:
    """A level as people read it: P1…P4, or below fault level."""
    return Level(level).label if level else str(_("below fault level"))


def new_token() -> str:
    return secrets.token_urlsafe(24)


class Integration(models.Model):
    """One monitoring source for one business, reached at its own secret URL."""

    class Kind(models.TextChoices):
        ALERTMANAGER = "alertmanager", _("Prometheus Alertmanager")
        GRAFANA = "grafana", _("Grafana alerting")
        CLOUDMONITOR = "aliyun-cloudmonitor", _("Alibaba Cloud CloudMonitor")
        GENERIC = "generic", _("Generic JSON")
        HEARTBEAT = "heartbeat", _("Heartbeat (dead man's switch)")

    class ResolvePolicy(models.TextChoices):
        ASK = "ask", _("Tell the commander and let him decide")
        RECOVER = "recover", _("Mark the fault recovered")

    name = models.CharField(_("name"), max_length=100)
    kind = models.CharField(_("kind"), max_length=32, choices=Kind.choices)
    business = models.ForeignKey(
        Business, on_delete=models.PROTECT, related_name="integrations", verbose_name=_("business")
    )
    token = models.CharField(_("secret token"), max_length=64, unique=True, default=new_token, editable=False)
    enabled = models.BooleanField(_("enabled"), default=True)
    group_by = models.JSONField(
        _("group by labels"),
        default=list,
        blank=True,
        help_text=_(
            'Label names, e.g. ["alertname", "cluster"]. Alerts with the same values join one open '
            "fault; with none, every alert of the business joins the one open fault."
        ),
    )
    resolve_policy = models.CharField(
        _("when every alert is resolved"), max_length=16, choices=ResolvePolicy.choices, default=ResolvePolicy.ASK
    )
    rate_limit = models.PositiveIntegerField(
        _("requests per minute"), default=600, help_text=_("More are answered 429 with Retry-After.")
    )
    heartbeat_interval = models.DurationField(
        _("heartbeat interval"), null=True, blank=True, help_text=_("Heartbeat only: how often monitoring calls.")
    )
    heartbeat_grace = models.DurationField(
        _("heartbeat grace"), null=True, blank=True, help_text=_("Heartbeat only: how late a call may be.")
    )
    heartbeat_level = models.PositiveSmallIntegerField(
        _("level when monitoring is blind"), choices=Level.choices, default=Level.P2
    )
    last_heartbeat_at = models.DateTimeField(_("last heartbeat"), null=True, blank=True, editable=False)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        ordering = ["business__name", "name"]
        verbose_name = _("integration")
        verbose_name_plural = _("integrations")

    def __str__(self) -> str:
        return f"{self.name} ({self.get_kind_display()}, {self.business})"

    @property
    def path(self) -> str:
        """Where monitoring sends to (alerts/urls.py), without the site's address."""
        if self.kind in (self.Kind.GENERIC, self.Kind.HEARTBEAT):
            return reverse(f"integration-{self.kind}", kwargs={"token": self.token})
        return reverse("integration-webhook", kwargs={"token": self.token, "kind": self.kind})

    @property
    def heartbeat_allowed(self) -> timedelta:
        """How long a heartbeat integration may stay silent before monitoring counts as blind."""
        return (self.heartbeat_interval or HEARTBEAT_INTERVAL) + (self.heartbeat_grace or HEARTBEAT_GRACE)


class LevelRule(models.Model):
    """Ordered per integration: the first rule whose conditions all hold gives the level.

    An empty condition holds for every alert. No level means "below fault level": the alert
    is stored and shown, and declares nothing.
    """

    integration = models.ForeignKey(Integration, on_delete=models.CASCADE, related_name="rules")
    position = models.PositiveIntegerField(_("position"), default=0)
    name = models.CharField(_("name"), max_length=100)
    severity = models.CharField(
        _("severity is one of"), max_length=200, blank=True,
        help_text=_("Comma-separated, any case: critical, error. Alertmanager and Grafana: the severity "
                    "label; CloudMonitor: triggerLevel (CRITICAL, WARN, INFO) or the event's level."),
    )
    labels = models.JSONField(
        _("labels match"), default=dict, blank=True,
        help_text=_('Every label must have this value, e.g. {"env": "prod"}; "*" only asks that it is present.'),
    )
    metric = models.CharField(_("metric is"), max_length=200, blank=True)
    value_above = models.FloatField(_("value above"), null=True, blank=True)
    level = models.PositiveSmallIntegerField(
        _("level"), choices=Level.choices, null=True, blank=True, help_text=_("Empty: below fault level.")
    )

    class Meta:
        ordering = ["integration", "position", "id"]
        verbose_name = _("level rule")
        verbose_name_plural = _("level rules")

    def __str__(self) -> str:
        return self.name

    @property
    def outcome(self) -> str:
        return outcome(self.level)


class Alert(models.Model):
    """One alert from its first firing notification to its resolution, however often it is sent.

    A notification with the same fingerprint, status and severity as the row's is a duplicate:
    it is counted (`received_count`), not stored again. A firing one at another severity
    updates the row's severity and level, and the fault follows.
    """

    class Status(models.TextChoices):
        FIRING = "firing", _("Firing")
        RESOLVED = "resolved", _("Resolved")

    integration = models.ForeignKey(Integration, on_delete=models.CASCADE, related_name="alerts")
    business = models.ForeignKey(Business, on_delete=models.CASCADE, related_name="+")
    fault = models.ForeignKey(Fault, null=True, blank=True, on_delete=models.SET_NULL, related_name="alerts")
    fingerprint = models.CharField(_("fingerprint"), max_length=128)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices)
    title = models.CharField(_("title"), max_length=300)
    severity = models.CharField(_("severity"), max_length=40, blank=True)
    labels = models.JSONField(_("labels"), default=dict)
    annotations = models.JSONField(_("annotations"), default=dict)
    metric = models.CharField(_("metric"), max_length=200, blank=True)
    value = models.FloatField(_("value"), null=True, blank=True)
    group_key = models.CharField(_("group key"), max_length=300, blank=True)
    level = models.PositiveSmallIntegerField(_("level"), choices=Level.choices, null=True, blank=True)
    rule = models.ForeignKey(LevelRule, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    rule_name = models.CharField(_("rule"), max_length=100, blank=True)
    starts_at = models.DateTimeField(_("starts"))
    ends_at = models.DateTimeField(_("ends"), null=True, blank=True)
    received_at = models.DateTimeField(_("received"))
    last_received_at = models.DateTimeField(_("last received"))
    received_count = models.PositiveIntegerField(_("times received"), default=1)
    raw = models.JSONField(_("raw payload"), default=dict)

    class Meta:
        ordering = ["-received_at", "-id"]
        verbose_name = _("alert")
        verbose_name_plural = _("alerts")
        constraints = [
            # Two notifications of one alert at once (an Alertmanager HA pair) store one row.
            models.UniqueConstraint(
                fields=["integration", "fingerprint"], condition=Q(status="firing"), name="alerts_one_firing"
            ),
        ]
        indexes = [
            models.Index(fields=["business", "status", "received_at"], name="alerts_business_status"),
            models.Index(fields=["integration", "fingerprint", "received_at"], name="alerts_fingerprint"),
        ]

    def __str__(self) -> str:
        return f"{self.title} ({self.get_status_display()})"

    @property
    def outcome(self) -> str:
        return outcome(self.level)

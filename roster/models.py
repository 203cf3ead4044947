import datetime
import secrets
import zoneinfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

e164 = RegexValidator(r"^\+[1-9]\d{6,14}$", _("Enter the number in E.164 form, e.g. +8613800138000."))


def validate_time_zone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(_("%(tz)s is not a known time zone (e.g. Asia/Shanghai)."), params={"tz": value})


class PagingMethod(models.TextChoices):
    """Ways to reach a person, tried in the order the person lists them."""

    DINGTALK_DING_PHONE = "dingtalk_ding_phone", _("DingTalk DING by phone")
    DINGTALK_DING_SMS = "dingtalk_ding_sms", _("DingTalk DING by SMS")
    DINGTALK_DING_APP = "dingtalk_ding_app", _("DingTalk DING in the app")
    ALIYUN_VOICE = "aliyun_voice", _("Alibaba Cloud voice call")
    ALIYUN_SMS = "aliyun_sms", _("Alibaba Cloud SMS")
    EMAIL = "email", _("Email")


def default_paging_methods() -> list[str]:
    return [PagingMethod.DINGTALK_DING_PHONE, PagingMethod.ALIYUN_VOICE, PagingMethod.ALIYUN_SMS, PagingMethod.DINGTALK_DING_APP]


def validate_paging_methods(value) -> None:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValidationError(_("Give the paging methods as a list, e.g. [\"aliyun_voice\", \"aliyun_sms\"]."))
    unknown = [v for v in value if v not in PagingMethod.values]
    if unknown:
        raise ValidationError(
            _("Unknown paging method(s): %(unknown)s. Choose from %(known)s."),
            params={"unknown": ", ".join(unknown), "known": ", ".join(PagingMethod.values)},
        )
    if len(set(value)) != len(value):
        raise ValidationError(_("List each paging method once."))


def new_calendar_token() -> str:
    """An unguessable token for a calendar feed URL (Google Calendar/Outlook cannot send headers)."""
    return secrets.token_urlsafe(24)


class Person(models.Model):
    """Someone the product may page: a responder, a leader, a stakeholder."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="person"
    )
    name = models.CharField(_("name"), max_length=100)
    phone = models.CharField(_("phone"), max_length=16, blank=True, validators=[e164])
    email = models.EmailField(_("email"), blank=True)
    dingtalk_user_id = models.CharField(_("DingTalk userId"), max_length=64, blank=True)
    dingtalk_union_id = models.CharField(_("DingTalk unionId"), max_length=64, blank=True)
    time_zone = models.CharField(_("time zone"), max_length=64, default="Asia/Shanghai", validators=[validate_time_zone])
    language = models.CharField(
        _("preferred language"), max_length=10, choices=settings.LANGUAGES, default=settings.LANGUAGE_CODE
    )
    paging_methods = models.JSONField(
        _("paging methods"),
        default=default_paging_methods,
        validators=[validate_paging_methods],
        help_text=_("Tried in this order until the person checks in."),
    )
    calendar_token = models.CharField(_("calendar token"), max_length=64, default=new_calendar_token, editable=False)

    class Meta:
        ordering = ["name"]
        verbose_name = _("person")
        verbose_name_plural = _("people")

    def __str__(self):
        return self.name


class Business(models.Model):
    """A business line whose exceptions can become faults."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    slug = models.SlugField(_("slug"), max_length=100, unique=True)
    technical_leader = models.ForeignKey(
        Person, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("technical team leader")
    )
    stability_contact = models.ForeignKey(
        Person, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("stability contact")
    )
    depends_on = models.ManyToManyField(
        "self", symmetrical=False, blank=True, related_name="dependants", verbose_name=_("depends on")
    )
    owning_team = models.ForeignKey(
        "Team", null=True, blank=True, on_delete=models.SET_NULL, related_name="businesses", verbose_name=_("owning team")
    )
    emergency_schedule = models.ForeignKey(
        "Schedule",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="businesses",
        verbose_name=_("emergency-contact schedule"),
        help_text=_("Whoever is on call here joins the fault's group and is dialled."),
    )
    escalation_policy = models.ForeignKey(
        "EscalationPolicy",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="businesses",
        verbose_name=_("escalation policy"),
        help_text=_("Empty: the default policy."),
    )
    notification_recipients = models.ManyToManyField(
        Person,
        blank=True,
        related_name="notified_for",
        verbose_name=_("notification recipients"),
        help_text=_("People who receive the impact and progress of this business's faults."),
    )
    notification_groups = models.ManyToManyField(
        "NotificationGroup",
        blank=True,
        related_name="businesses",
        verbose_name=_("notification groups"),
        help_text=_("DingTalk groups that receive this business's fault notifications."),
    )

    class Meta:
        ordering = ["name"]
        verbose_name = _("business")
        verbose_name_plural = _("businesses")

    def __str__(self):
        return self.name


class Team(models.Model):
    """A group of people with a leader, e.g. the stability department or a business's tech team."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    slug = models.SlugField(_("slug"), max_length=100, unique=True)
    leader = models.ForeignKey(
        Person, null=True, blank=True, on_delete=models.SET_NULL, related_name="teams_led", verbose_name=_("leader")
    )
    members = models.ManyToManyField(Person, blank=True, related_name="teams", verbose_name=_("members"))

    class Meta:
        ordering = ["name"]
        verbose_name = _("team")
        verbose_name_plural = _("teams")

    def __str__(self):
        return self.name


class Schedule(models.Model):
    """Who is on call, computed from rotations (layers) and overrides in one time zone.

    How the parts combine (roster.selectors.on_call):
    - an override covering the instant wins over every layer;
    - otherwise the highest layer whose rotations have someone on call at the instant wins;
      a rotation restricted to some days has nobody on call on the other days, so a lower
      layer shows through there (e.g. layer 1 every day, layer 2 weekends only).
    """

    class Purpose(models.TextChoices):
        GENERAL = "", _("General")
        FAULT_HANDLER = "fault_handler", _("Fault handler on duty")

    name = models.CharField(_("name"), max_length=100, unique=True)
    slug = models.SlugField(_("slug"), max_length=100, unique=True)
    description = models.TextField(_("description"), blank=True)
    time_zone = models.CharField(
        _("time zone"),
        max_length=64,
        default="Asia/Shanghai",
        validators=[validate_time_zone],
        help_text=_("Hand-off times are wall-clock times in this zone, also across daylight-saving changes."),
    )
    purpose = models.CharField(
        _("purpose"),
        max_length=24,
        choices=Purpose.choices,
        default=Purpose.GENERAL,
        blank=True,
        help_text=_("The fault handler on duty (the monitoring duty engineer) initiates automatically declared faults."),
    )
    calendar_token = models.CharField(_("calendar token"), max_length=64, default=new_calendar_token, editable=False)

    class Meta:
        ordering = ["name"]
        verbose_name = _("on-call schedule")
        verbose_name_plural = _("on-call schedules")
        constraints = [
            models.UniqueConstraint(
                fields=["purpose"], condition=~models.Q(purpose=""), name="one_schedule_per_purpose"
            ),
        ]

    def __str__(self):
        return self.name

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.time_zone)


class Weekday(models.IntegerChoices):
    MONDAY = 0, _("Monday")
    TUESDAY = 1, _("Tuesday")
    WEDNESDAY = 2, _("Wednesday")
    THURSDAY = 3, _("Thursday")
    FRIDAY = 4, _("Friday")
    SATURDAY = 5, _("Saturday")
    SUNDAY = 6, _("Sunday")


def all_weekdays() -> list[int]:
    return list(Weekday.values)


def validate_weekdays(value) -> None:
    if not isinstance(value, list) or not value or any(v not in Weekday.values for v in value):
        raise ValidationError(_("Choose at least one day of the week."))


class Rotation(models.Model):
    """One layer of a schedule: ordered members take turns, one shift each.

    Shift k starts at the local wall-clock time `start_date + hand_off_time + k × shift length`
    in the schedule's time zone, so a daily 09:00 hand-off stays at 09:00 across DST (that
    day's shift is 23 or 25 hours long). The incoming member is on call from the hand-off
    instant itself. A hand-off time the clocks skip happens as if the clocks had not been
    changed yet (02:30 on the spring-forward day in Berlin hands off at 03:30 CEST).

    `active_weekdays` restricts the layer to rotation days that begin (at the hand-off time)
    on those weekdays; on the others the layer has nobody and lower layers show through.
    Hidden days still use up shifts, as if the member had been on call.
    """

    class Unit(models.TextChoices):
        HOURS = "hours", _("hours")
        DAYS = "days", _("days")
        WEEKS = "weeks", _("weeks")

    schedule = models.ForeignKey(Schedule, on_delete=models.CASCADE, related_name="rotations", verbose_name=_("schedule"))
    name = models.CharField(_("name"), max_length=100)
    layer = models.PositiveSmallIntegerField(
        _("layer"), default=1, help_text=_("Where layers overlap, the highest layer with someone on call wins.")
    )
    shift_length = models.PositiveSmallIntegerField(_("shift length"), default=1, validators=[MinValueValidator(1)])
    shift_unit = models.CharField(_("shift unit"), max_length=8, choices=Unit.choices, default=Unit.WEEKS)
    start_date = models.DateField(_("start date"), help_text=_("The first member's first shift starts on this day."))
    hand_off_time = models.TimeField(_("hand-off time"), default=datetime.time(9, 0))
    active_weekdays = models.JSONField(
        _("active on"), default=all_weekdays, validators=[validate_weekdays], help_text=_("Days the layer covers.")
    )
    members = models.ManyToManyField(Person, through="RotationMember", related_name="rotations")

    class Meta:
        ordering = ["schedule", "-layer", "pk"]
        verbose_name = _("rotation")
        verbose_name_plural = _("rotations (layers)")

    def __str__(self):
        return f"{self.schedule} · {self.name}"

    @property
    def shift_step(self) -> datetime.timedelta:
        per_unit = {self.Unit.HOURS: datetime.timedelta(hours=1), self.Unit.DAYS: datetime.timedelta(days=1)}
        return self.shift_length * per_unit.get(self.shift_unit, datetime.timedelta(weeks=1))

    @property
    def is_restricted(self) -> bool:
        return sorted(set(self.active_weekdays or [])) != Weekday.values


class RotationMember(models.Model):
    rotation = models.ForeignKey(Rotation, on_delete=models.CASCADE, related_name="rotation_members")
    person = models.ForeignKey(Person, on_delete=models.CASCADE, related_name="+", verbose_name=_("person"))
    position = models.PositiveSmallIntegerField(_("position"), default=0, help_text=_("Takes turns in this order."))

    class Meta:
        ordering = ["position", "pk"]
        verbose_name = _("rotation member")
        verbose_name_plural = _("rotation members")

    def __str__(self):
        return f"{self.position}. {self.person}"


class Override(models.Model):
    """Someone covers a window of a schedule; overrides win over every layer. [start, end)."""

    schedule = models.ForeignKey(Schedule, on_delete=models.CASCADE, related_name="overrides", verbose_name=_("schedule"))
    person = models.ForeignKey(Person, on_delete=models.CASCADE, related_name="overrides", verbose_name=_("person"))
    start = models.DateTimeField(_("start"))
    end = models.DateTimeField(_("end"))
    reason = models.CharField(_("reason"), max_length=200, blank=True)

    class Meta:
        ordering = ["start", "pk"]
        verbose_name = _("override")
        verbose_name_plural = _("overrides")
        constraints = [
            models.CheckConstraint(condition=models.Q(end__gt=models.F("start")), name="override_ends_after_start")
        ]

    def __str__(self):
        return f"{self.person} covers {self.schedule}"

    def clean(self):
        if self.start and self.end and self.end <= self.start:
            raise ValidationError({"end": _("The override ends before it starts; make the end later than the start.")})


class CandidateKind(models.TextChoices):
    """Who a commander candidate or an escalation step points at."""

    PERSON = "person", _("A named person")
    TEAM_LEADER = "team_leader", _("A team's leader")
    SCHEDULE = "schedule", _("Whoever is on call on a schedule")
    TECHNICAL_LEADER = "technical_leader", _("The affected business's technical team leader")
    STABILITY_CONTACT = "stability_contact", _("The affected business's stability contact")


_TARGET_FIELD = {
    CandidateKind.PERSON: "person",
    CandidateKind.TEAM_LEADER: "team",
    CandidateKind.SCHEDULE: "schedule",
}


class _Target(models.Model):
    """A pointer to who to reach: one kind, and the person/team/schedule it needs."""

    position = models.PositiveSmallIntegerField(_("position"), default=0)
    kind = models.CharField(_("who"), max_length=24, choices=CandidateKind.choices)
    person = models.ForeignKey(
        Person, null=True, blank=True, on_delete=models.PROTECT, related_name="+", verbose_name=_("person")
    )
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.PROTECT, related_name="+", verbose_name=_("team"))
    schedule = models.ForeignKey(
        Schedule, null=True, blank=True, on_delete=models.PROTECT, related_name="+", verbose_name=_("schedule")
    )

    class Meta:
        abstract = True
        ordering = ["position", "pk"]

    def clean(self):
        needed = _TARGET_FIELD.get(self.kind)
        if needed and getattr(self, f"{needed}_id") is None:
            label = self._meta.get_field(needed).verbose_name
            raise ValidationError(
                {needed: _("Choose the %(what)s: “%(kind)s” needs one.")
                 % {"what": label, "kind": CandidateKind(self.kind).label}}
            )
        extra = [f for f in _TARGET_FIELD.values() if f != needed and getattr(self, f"{f}_id") is not None]
        if extra:
            raise ValidationError(
                _("“%(kind)s” uses no %(fields)s; clear it.") % {"kind": CandidateKind(self.kind).label, "fields": ", ".join(extra)}
            )

    def describe(self) -> str:
        target = getattr(self, _TARGET_FIELD[self.kind]) if self.kind in _TARGET_FIELD else None
        return f"{CandidateKind(self.kind).label}: {target}" if target is not None else str(CandidateKind(self.kind).label)


class CommanderRule(models.Model):
    """How the commander of a fault of one level is chosen: the first candidate with someone wins."""

    level = models.PositiveSmallIntegerField(
        _("level"), unique=True, choices=[(n, f"P{n}") for n in (1, 2, 3, 4)], help_text=_("P1 is the most severe.")
    )
    note = models.CharField(_("note"), max_length=200, blank=True)

    class Meta:
        ordering = ["level"]
        verbose_name = _("commander rule")
        verbose_name_plural = _("commander rules")

    def __str__(self):
        return f"Commander for P{self.level}"


class CommanderCandidate(_Target):
    rule = models.ForeignKey(CommanderRule, on_delete=models.CASCADE, related_name="candidates")

    class Meta(_Target.Meta):
        verbose_name = _("candidate")
        verbose_name_plural = _("candidates, tried in order")

    def __str__(self):
        return f"{self.position}. {self.describe()}"


class EscalationPolicy(models.Model):
    """Who to page, and when, while the paged people have not checked in."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    is_default = models.BooleanField(
        _("default"), default=False, help_text=_("Used for businesses that name no policy of their own.")
    )
    repeat_last_step_every = models.PositiveIntegerField(
        _("repeat the last step every (minutes)"),
        null=True,
        blank=True,
        help_text=_("Leave empty to page the last step once."),
    )
    repeat_limit = models.PositiveSmallIntegerField(
        _("repeat at most"), default=3, help_text=_("How many times the last step repeats.")
    )

    class Meta:
        ordering = ["name"]
        verbose_name = _("escalation policy")
        verbose_name_plural = _("escalation policies")
        constraints = [
            models.UniqueConstraint(fields=["is_default"], condition=models.Q(is_default=True), name="one_default_escalation_policy")
        ]

    def __str__(self):
        return self.name


class EscalationStep(_Target):
    policy = models.ForeignKey(EscalationPolicy, on_delete=models.CASCADE, related_name="steps")
    after_minutes = models.PositiveIntegerField(
        _("after (minutes without check-in)"), default=5, help_text=_("Counted from the first page of the fault.")
    )

    class Meta(_Target.Meta):
        ordering = ["after_minutes", "position", "pk"]
        verbose_name = _("escalation step")
        verbose_name_plural = _("escalation steps")

    def __str__(self):
        return f"after {self.after_minutes} min: {self.describe()}"


class NotificationGroup(models.Model):
    """A DingTalk group that receives a business's fault notifications.

    Either an existing group reached through the DingTalk app robot (openConversationId), or
    a custom robot's webhook (URL + signing secret).
    """

    class Kind(models.TextChoices):
        DINGTALK_CONVERSATION = "dingtalk_conversation", _("DingTalk group (openConversationId)")
        DINGTALK_ROBOT_WEBHOOK = "dingtalk_robot_webhook", _("DingTalk custom robot webhook")

    name = models.CharField(_("name"), max_length=100, unique=True)
    kind = models.CharField(_("kind"), max_length=32, choices=Kind.choices, default=Kind.DINGTALK_CONVERSATION)
    open_conversation_id = models.CharField(_("openConversationId"), max_length=128, blank=True)
    webhook_url = models.URLField(_("webhook URL"), max_length=500, blank=True)
    webhook_secret = models.CharField(_("webhook signing secret"), max_length=128, blank=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("notification group")
        verbose_name_plural = _("notification groups")

    def __str__(self):
        return self.name

    def clean(self):
        if self.kind == self.Kind.DINGTALK_CONVERSATION and not self.open_conversation_id:
            raise ValidationError({"open_conversation_id": _("Give the group's openConversationId.")})
        if self.kind == self.Kind.DINGTALK_ROBOT_WEBHOOK:
            errors = {}
            if not self.webhook_url:
                errors["webhook_url"] = _("Give the robot's webhook URL.")
            if not self.webhook_secret:
                errors["webhook_secret"] = _("Give the robot's signing secret (SEC…).")
            if errors:
                raise ValidationError(errors)

"""The roster in Django admin: who is responsible for what, and who is on call.

Rotations (the layers of a schedule) are edited on their own page, where their members are
an ordered inline; the schedule's page lists its layers with links, its overrides inline,
and what it computes: on call now and for the next 7 days.
"""

from django import forms
from django.conf import settings
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db import models
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from . import selectors
from .models import (
    Business,
    CommanderCandidate,
    CommanderRule,
    EscalationPolicy,
    EscalationStep,
    NotificationGroup,
    Override,
    Person,
    Rotation,
    RotationMember,
    Schedule,
    Team,
    Weekday,
)


def _names(people) -> str:
    return ", ".join(p.name for p in people) or "—"


def _overview(schedule: Schedule, *, note: str = "", now=None) -> str:
    return render_to_string(
        "admin/roster/on_call_overview.html",
        {
            "now": selectors.on_call(schedule=schedule) if now is None else now,
            "shifts": selectors.next_handoffs(schedule=schedule, days=7),
            "zone": schedule.time_zone,
            "note": note,
        },
    )


def _feed_link(name: str, obj) -> str:
    if obj.pk is None:
        return "—"
    url = settings.SITE_URL + reverse(f"roster:{name}", args=[obj.pk, obj.calendar_token])
    return format_html(
        '<a href="{0}">{0}</a><div class="help">{1}</div>',
        url,
        _("Subscribe to this URL in Google Calendar or Outlook. Anyone with the URL can read it."),
    )


# --- people and teams ---------------------------------------------------------------------


@admin.register(Person)
class PersonAdmin(admin.ModelAdmin):
    list_display = ["name", "phone", "email", "dingtalk_user_id", "time_zone", "language", "user"]
    search_fields = ["name", "phone", "email", "dingtalk_user_id", "dingtalk_union_id", "user__username"]
    list_filter = ["time_zone", "language", "teams"]
    autocomplete_fields = ["user"]
    readonly_fields = ["calendar_feed"]
    fieldsets = [
        (None, {"fields": ["name", "user", "time_zone", "language"]}),
        (_("How to reach them"), {"fields": ["phone", "email", "dingtalk_user_id", "dingtalk_union_id", "paging_methods"]}),
        (_("Calendar"), {"fields": ["calendar_feed"]}),
    ]

    @admin.display(description=_("on-call calendar feed"))
    def calendar_feed(self, obj):
        return _feed_link("person-calendar", obj)


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ["name", "leader", "member_count"]
    search_fields = ["name", "slug", "leader__name", "members__name"]
    prepopulated_fields = {"slug": ["name"]}
    autocomplete_fields = ["leader", "members"]

    @admin.display(description=_("members"))
    def member_count(self, obj):
        return obj.members.count()


# --- schedules ----------------------------------------------------------------------------


class RotationLayerInline(admin.TabularInline):
    """The schedule's layers, read-only here: members are edited on the rotation's page."""

    model = Rotation
    extra = 0
    fields = ["name", "layer", "shift", "active_days", "member_names"]
    readonly_fields = fields
    show_change_link = True
    verbose_name = _("layer")
    verbose_name_plural = _("layers (rotations) — open one to edit it and its members")

    def has_add_permission(self, request, obj=None):
        return False  # added on the rotation page, so that it has members from the start

    @admin.display(description=_("shift"))
    def shift(self, obj):
        return RotationAdmin.shift(None, obj)

    @admin.display(description=_("active on"))
    def active_days(self, obj):
        return RotationAdmin.active_days(None, obj)

    @admin.display(description=_("members, in turn"))
    def member_names(self, obj):
        return _names(m.person for m in obj.rotation_members.select_related("person"))


class OverrideInline(admin.TabularInline):
    model = Override
    extra = 0
    fields = ["person", "start", "end", "reason"]
    autocomplete_fields = ["person"]


@admin.register(Schedule)
class ScheduleAdmin(admin.ModelAdmin):
    list_display = ["name", "time_zone", "purpose", "on_call_now", "layer_count"]
    list_filter = ["time_zone", "purpose"]
    search_fields = ["name", "slug", "description", "rotations__rotation_members__person__name"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [RotationLayerInline, OverrideInline]
    readonly_fields = ["add_layer", "on_call_overview", "calendar_feed"]
    fieldsets = [
        (None, {"fields": ["name", "slug", "time_zone", "purpose", "description"]}),
        (_("On call now and for the next 7 days"), {"fields": ["on_call_overview", "add_layer"]}),
        (_("Calendar"), {"fields": ["calendar_feed"], "classes": ["collapse"]}),
    ]

    def get_queryset(self, request):
        return super().get_queryset(request).distinct()

    @admin.display(description=_("on call now"))
    def on_call_now(self, obj):
        return _names(selectors.on_call(schedule=obj))

    @admin.display(description=_("layers"))
    def layer_count(self, obj):
        return obj.rotations.count()

    @admin.display(description=_("on call"))
    def on_call_overview(self, obj):
        if obj.pk is None:
            return _("Save the schedule, then add its layers.")
        return _overview(obj)

    @admin.display(description=_("layers"))
    def add_layer(self, obj):
        if obj.pk is None:
            return "—"
        url = reverse("admin:roster_rotation_add") + f"?schedule={obj.pk}"
        return format_html('<a class="addlink" href="{}">{}</a>', url, _("Add a layer (rotation)"))

    @admin.display(description=_("calendar feed"))
    def calendar_feed(self, obj):
        return _feed_link("schedule-calendar", obj)


class RotationMemberFormSet(forms.BaseInlineFormSet):
    def clean(self):
        super().clean()
        kept = [
            form for form in self.forms
            if form.cleaned_data and not form.cleaned_data.get("DELETE") and form.cleaned_data.get("person")
        ]
        if not kept:
            raise ValidationError(_("A rotation needs at least one member: add the people who take turns."))


class RotationMemberInline(admin.TabularInline):
    model = RotationMember
    formset = RotationMemberFormSet
    extra = 0
    fields = ["position", "person"]
    autocomplete_fields = ["person"]
    ordering = ["position", "pk"]
    verbose_name_plural = _("members, taking turns in order of position")


class RotationForm(forms.ModelForm):
    active_weekdays = forms.TypedMultipleChoiceField(
        label=_("active on"),
        choices=Weekday.choices,
        coerce=int,
        initial=Weekday.values,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("A rotation day starts at the hand-off time; on unticked days lower layers show through."),
        error_messages={"required": _("Choose at least one day of the week.")},
    )

    class Meta:
        model = Rotation
        fields = "__all__"


@admin.register(Rotation)
class RotationAdmin(admin.ModelAdmin):
    form = RotationForm
    list_display = ["name", "schedule", "layer", "shift", "active_days", "member_names"]
    list_filter = ["schedule", "shift_unit", "layer"]
    search_fields = ["name", "schedule__name", "rotation_members__person__name"]
    list_select_related = ["schedule"]
    autocomplete_fields = ["schedule"]
    inlines = [RotationMemberInline]
    readonly_fields = ["schedule_on_call"]
    fieldsets = [
        (None, {"fields": ["schedule", "name", "layer"]}),
        (_("Shifts"), {"fields": ["shift_length", "shift_unit", "start_date", "hand_off_time", "active_weekdays"]}),
        (_("The schedule on call now and for the next 7 days"), {"fields": ["schedule_on_call"]}),
    ]

    def get_queryset(self, request):
        return super().get_queryset(request).distinct()

    @admin.display(description=_("shift"))
    def shift(self, obj):
        return f"{obj.shift_length} {obj.get_shift_unit_display()}, hand-off {obj.hand_off_time:%H:%M} ({obj.schedule.time_zone})"

    @admin.display(description=_("active on"))
    def active_days(self, obj):
        if not obj.is_restricted:
            return _("every day")
        return ", ".join(str(Weekday(d).label)[:3] for d in sorted(obj.active_weekdays))

    @admin.display(description=_("members, in turn"))
    def member_names(self, obj):
        return _names(m.person for m in obj.rotation_members.select_related("person"))

    @admin.display(description=_("on call"))
    def schedule_on_call(self, obj):
        if obj.pk is None:
            return "—"
        return _overview(obj.schedule)


@admin.register(Override)
class OverrideAdmin(admin.ModelAdmin):
    list_display = ["person", "schedule", "start", "end", "reason"]
    list_filter = ["schedule"]
    search_fields = ["person__name", "schedule__name", "reason"]
    autocomplete_fields = ["person", "schedule"]
    date_hierarchy = "start"
    list_select_related = ["person", "schedule"]


# --- commander rules and escalation ------------------------------------------------------


class TargetInline(admin.TabularInline):
    extra = 0
    fields = ["position", "kind", "person", "team", "schedule"]
    autocomplete_fields = ["person", "team", "schedule"]


class CommanderCandidateInline(TargetInline):
    model = CommanderCandidate


class EscalationStepInline(TargetInline):
    model = EscalationStep
    fields = ["after_minutes", *TargetInline.fields]


@admin.register(CommanderRule)
class CommanderRuleAdmin(admin.ModelAdmin):
    list_display = ["__str__", "note", "candidate_list"]
    inlines = [CommanderCandidateInline]
    readonly_fields = ["would_choose_now"]
    search_fields = ["note"]

    @admin.display(description=_("candidates, in order"))
    def candidate_list(self, obj):
        return format_html_join(" → ", "{}", ((c.describe(),) for c in obj.candidates.all())) or "—"

    @admin.display(description=_("would choose now"))
    def would_choose_now(self, obj):
        if obj.pk is None:
            return "—"
        person, why = selectors.choose_commander(level=obj.level, business=None)
        lines = [*why["fallbacks"]]
        return format_html(
            "<strong>{}</strong>{}<div class='help'>{}</div>",
            person.name if person else _("nobody"),
            format_html_join("", "<div>skipped: {}</div>", ((line,) for line in lines)),
            _("For a fault of no particular business; business contacts depend on the affected business."),
        )


@admin.register(EscalationPolicy)
class EscalationPolicyAdmin(admin.ModelAdmin):
    list_display = ["name", "is_default", "step_list", "repeat_last_step_every", "repeat_limit"]
    list_filter = ["is_default"]
    search_fields = ["name"]
    inlines = [EscalationStepInline]

    @admin.display(description=_("steps"))
    def step_list(self, obj):
        return format_html_join(" → ", "{}", ((str(s),) for s in obj.steps.all())) or "—"


@admin.register(NotificationGroup)
class NotificationGroupAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "open_conversation_id", "webhook_url"]
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}  # DingTalk webhooks are https
    list_filter = ["kind"]
    search_fields = ["name", "open_conversation_id", "webhook_url"]


# --- businesses ---------------------------------------------------------------------------


@admin.register(Business)
class BusinessAdmin(admin.ModelAdmin):
    list_display = [
        "name", "owning_team", "technical_leader", "stability_contact", "emergency_schedule", "emergency_contacts_now"
    ]
    list_filter = ["owning_team", "emergency_schedule", "escalation_policy"]
    search_fields = ["name", "slug", "technical_leader__name", "stability_contact__name"]
    list_select_related = ["owning_team", "technical_leader", "stability_contact", "emergency_schedule"]
    prepopulated_fields = {"slug": ["name"]}
    autocomplete_fields = [
        "owning_team", "technical_leader", "stability_contact", "emergency_schedule", "notification_recipients"
    ]
    filter_horizontal = ["depends_on", "notification_groups"]
    readonly_fields = ["on_call_overview"]
    fieldsets = [
        (None, {"fields": ["name", "slug", "owning_team", "depends_on"]}),
        (_("Who responds"), {"fields": ["technical_leader", "stability_contact", "emergency_schedule", "escalation_policy"]}),
        (_("Emergency contacts now and for the next 7 days"), {"fields": ["on_call_overview"]}),
        (_("Who is notified of its faults"), {"fields": ["notification_recipients", "notification_groups"]}),
    ]

    @admin.display(description=_("emergency contacts now"))
    def emergency_contacts_now(self, obj):
        return _names(selectors.emergency_contacts(business=obj))

    @admin.display(description=_("on call"))
    def on_call_overview(self, obj):
        if obj.pk is None:
            return "—"
        contacts = selectors.emergency_contacts(business=obj)
        if obj.emergency_schedule is None:
            return format_html(
                "<strong>{}</strong><div class='help'>{}</div>",
                _names(contacts),
                _("No emergency-contact schedule: the stability contact (else the technical leader) stands in."),
            )
        return _overview(
            obj.emergency_schedule,
            now=contacts,
            note=_("From the schedule “%(s)s”; when nobody is on call, the stability contact stands in.")
            % {"s": obj.emergency_schedule},
        )

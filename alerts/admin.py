"""Integrations and the alerts they received, in Django admin.

An integration's page shows the URL to paste into the monitoring system, a sample `curl`
that sends one alert to it (and, for Alertmanager, the receiver to add), and its level
rules inline; a new integration without rules gets its kind's defaults. Alerts are a
record of what monitoring sent: read here, never added or changed.
"""

import json
from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from incidents.models import Level

from .instructions import alertmanager_yaml, sample_curl, webhook_url
from .levels import install_defaults
from .models import Alert, Integration, LevelRule

Kind = Integration.Kind

def _webhook_panel(integration: Integration) -> str:
    return render_to_string("alerts/admin_webhook.html", {
        "integration": integration,
        "url": webhook_url(integration),
        "curl": sample_curl(integration),
        "yaml": alertmanager_yaml(integration),
        "heartbeat": integration.kind == Kind.HEARTBEAT,
    })


def _pretty(value) -> str:
    if value in (None, {}, []):
        return "—"
    return format_html(
        '<pre style="white-space: pre-wrap; margin: 0">{}</pre>',
        json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str),
    )


# --- integrations ---------------------------------------------------------------------------


_RULE_WIDTHS = {"position": "4em", "name": "11em", "severity": "13em", "labels": "10em", "metric": "8em",
                "value_above": "6em"}


class LevelRuleForm(forms.ModelForm):
    class Meta:
        model = LevelRule
        fields = ("position", "name", "severity", "labels", "metric", "value_above", "level")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name, width in _RULE_WIDTHS.items():  # one row of the inline fits the page
            if name in self.fields:
                self.fields[name].widget.attrs["style"] = f"width: {width}"
        if "labels" in self.fields:
            self.fields["labels"].widget.attrs["rows"] = 1
            self.fields["labels"].error_messages["invalid"] = _(
                'Enter a JSON object of label values, e.g. {"env": "prod"}.'
            )

    def clean_labels(self):
        labels = self.cleaned_data.get("labels")
        if labels in (None, ""):
            return {}
        if not isinstance(labels, dict) or not all(
            isinstance(name, str) and name.strip() and isinstance(value, str) for name, value in labels.items()
        ):
            raise ValidationError(
                _('Enter a JSON object whose values are strings, e.g. {"env": "prod"}; "*" only asks that the '
                  "label is present.")
            )
        return labels


class LevelRuleInline(admin.TabularInline):
    model = LevelRule
    form = LevelRuleForm
    extra = 0
    fields = ("position", "name", "severity", "labels", "metric", "value_above", "level")
    ordering = ("position", "pk")
    verbose_name_plural = _(
        "level rules: the first that matches gives the fault level (a new integration without rules gets "
        "its kind's defaults)"
    )


class IntegrationForm(forms.ModelForm):
    class Meta:
        model = Integration
        fields = "__all__"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "group_by" in self.fields:
            self.fields["group_by"].widget.attrs.update(rows=2, cols=60)
            self.fields["group_by"].error_messages["invalid"] = _(
                'Enter a JSON list of label names, e.g. ["alertname", "cluster"].'
            )

    def clean_group_by(self):
        names = self.cleaned_data.get("group_by")
        if names in (None, ""):
            return []
        if not isinstance(names, list) or not all(isinstance(name, str) and name.strip() for name in names):
            raise ValidationError(_('Enter a JSON list of label names, e.g. ["alertname", "cluster"].'))
        return [name.strip() for name in names]

    def clean(self):
        data = super().clean()
        kind = data.get("kind") or self.instance.kind
        interval, grace = data.get("heartbeat_interval"), data.get("heartbeat_grace")
        if kind == Kind.HEARTBEAT and "heartbeat_interval" in self.fields and "heartbeat_interval" not in self.errors:
            if not interval:
                self.add_error("heartbeat_interval", _(
                    "A heartbeat integration needs its interval: how often monitoring calls, e.g. 300 (seconds) "
                    "or 00:05:00."
                ))
            elif interval <= timedelta(0):
                self.add_error("heartbeat_interval", _("The interval must be longer than zero."))
        if grace is not None and grace < timedelta(0) and "heartbeat_grace" not in self.errors:
            self.add_error("heartbeat_grace", _("The grace cannot be negative."))
        return data


@admin.register(Integration)
class IntegrationAdmin(admin.ModelAdmin):
    form = IntegrationForm
    list_display = ("name", "kind", "business", "enabled", "resolve_policy", "last_heartbeat_at")
    list_filter = ("kind", "enabled", "business")
    search_fields = ("name", "business__name", "business__slug")
    list_select_related = ("business",)
    autocomplete_fields = ("business",)
    inlines = (LevelRuleInline,)
    readonly_fields = ("webhook", "last_heartbeat_at", "created_at")

    def get_fieldsets(self, request, obj=None):
        fieldsets = [
            (None, {"fields": ["name", "kind", "business", "enabled"]}),
            (_("Where monitoring sends its alerts"), {"fields": ["webhook"]}),
            (_("Faults"), {"fields": ["group_by", "resolve_policy", "rate_limit"]}),
        ]
        if obj is None or obj.kind == Kind.HEARTBEAT:
            fieldsets.append((_("Heartbeat (dead man's switch)"), {
                "fields": ["heartbeat_interval", "heartbeat_grace", "heartbeat_level", "last_heartbeat_at"],
                "description": _(
                    "Heartbeat integrations only. Monitoring calls the URL every interval; its first call "
                    "arms the switch. When no call has come for the interval plus the grace, an alert "
                    "“Monitoring is blind” fires at the level below and declares a fault; the next call "
                    "resolves it. Durations: seconds (300) or hh:mm:ss."
                ),
            }))
        return fieldsets

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None:
            fields.append("kind")  # the kind is part of the URL monitoring was given
        return fields

    def get_inlines(self, request, obj):
        if obj is not None and obj.kind == Kind.HEARTBEAT:
            return []  # a missed heartbeat always fires at the heartbeat level
        return super().get_inlines(request, obj)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        if change:
            return
        installed = install_defaults(form.instance)
        if installed:
            self.message_user(request, ngettext(
                "It has its kind's default level rule; edit it below.",
                "It has its kind's %(n)d default level rules; edit them below.",
                len(installed),
            ) % {"n": len(installed)}, messages.INFO)

    @admin.display(description=_("webhook URL"))
    def webhook(self, obj):
        if obj is None or obj.pk is None:
            return _("Save the integration: its URL appears here, with a sample curl.")
        return _webhook_panel(obj)


# --- alerts ----------------------------------------------------------------------------------


class LevelFilter(admin.SimpleListFilter):
    title = _("level")
    parameter_name = "level"

    def lookups(self, request, model_admin):
        return [*((str(level.value), level.label) for level in Level), ("below", _("below fault level"))]

    def queryset(self, request, queryset):
        if self.value() == "below":
            return queryset.filter(level__isnull=True)
        if self.value() in {str(level.value) for level in Level}:
            return queryset.filter(level=int(self.value()))
        return queryset


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    """What monitoring sent, as received: read-only."""

    list_display = (
        "title", "integration_name", "status", "outcome", "rule_name", "received_count", "fault_link", "received_at"
    )
    list_filter = ("integration", "business", "status", LevelFilter)
    date_hierarchy = "received_at"
    search_fields = ("title", "fingerprint")
    list_select_related = ("integration", "fault")
    fieldsets = (
        (None, {"fields": ["title", "status", "integration", "business", "fault_link", "outcome", "rule_name",
                           "severity"]}),
        (_("When"), {"fields": ["starts_at", "ends_at", "received_at", "last_received_at", "received_count"]}),
        (_("What monitoring said"), {"fields": ["fingerprint", "group_key", "metric", "value", "labels_pretty",
                                                "annotations_pretty"]}),
        (_("Raw payload"), {"fields": ["raw_pretty"]}),
    )
    readonly_fields = tuple(field for _name, options in fieldsets for field in options["fields"])

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description=_("integration"), ordering="integration__name")
    def integration_name(self, obj):
        return obj.integration.name

    @admin.display(description=_("level"), ordering="level")
    def outcome(self, obj):
        return obj.outcome

    @admin.display(description=_("fault"), ordering="fault")
    def fault_link(self, obj):
        if obj.fault_id is None:
            return "—"
        return format_html(
            '<a href="{}">#{} {}</a>', reverse("warroom:fault", args=[obj.fault_id]), obj.fault_id, obj.fault.title
        )

    @admin.display(description=_("labels"))
    def labels_pretty(self, obj):
        return _pretty(obj.labels)

    @admin.display(description=_("annotations"))
    def annotations_pretty(self, obj):
        return _pretty(obj.annotations)

    @admin.display(description=_("raw payload"))
    def raw_pretty(self, obj):
        return _pretty(obj.raw)

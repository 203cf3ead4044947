from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _

from . import services
from .errors import ServiceError
from .metrics import format_duration
from .models import (
    Fault,
    MitigationPlan,
    RecoverySummary,
    RoleAssignment,
    SLAPolicy,
    StatusUpdate,
    Task,
    TimelineEvent,
)


@admin.register(SLAPolicy)
class SLAPolicyAdmin(admin.ModelAdmin):
    list_display = [
        "level",
        "notify_within",
        "check_in_within",
        "task_response_within",
        "progress_update_every",
        "renotify_every",
    ]


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class RoleInline(ReadOnlyInline):
    model = RoleAssignment
    fields = ["role", "person", "assigned_at", "checked_in_at", "ended_at"]


class TaskInline(ReadOnlyInline):
    model = Task
    fields = ["title", "kind", "assignee", "status", "due_at", "progress"]


class PlanInline(ReadOnlyInline):
    model = MitigationPlan
    fields = ["description", "expected_impact", "status", "decided_at"]


class UpdateInline(ReadOnlyInline):
    model = StatusUpdate
    fields = ["posted_at", "kind", "body", "author"]


class TimelineInline(ReadOnlyInline):
    model = TimelineEvent
    fields = ["seq", "created_at", "kind", "actor_label", "data"]


def _run_on_each(modeladmin, request, queryset, service, done):
    for fault in queryset:
        try:
            service(fault=fault, actor=request.user)
        except ServiceError as exc:
            modeladmin.message_user(request, f"Fault #{fault.pk}: {exc.message}", messages.ERROR)
        else:
            modeladmin.message_user(request, f"Fault #{fault.pk} {done}.", messages.SUCCESS)


@admin.register(Fault)
class FaultAdmin(admin.ModelAdmin):
    """Faults are read here and moved by actions; every change goes through the services."""

    list_display = ["id", "level", "status", "title", "affected_business", "declared_at", "recovered_at"]
    list_filter = ["status", "level", "affected_business"]
    search_fields = ["title", "impact"]
    date_hierarchy = "declared_at"
    inlines = [RoleInline, TaskInline, PlanInline, UpdateInline, TimelineInline]
    actions = ["mark_mitigated", "mark_recovered", "close"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description=_("Mark mitigated"), permissions=["view"])
    def mark_mitigated(self, request, queryset):
        _run_on_each(self, request, queryset, services.fault_mark_mitigated, "is mitigated")

    @admin.action(description=_("Mark recovered"), permissions=["view"])
    def mark_recovered(self, request, queryset):
        _run_on_each(self, request, queryset, services.fault_mark_recovered, "is recovered")

    @admin.action(description=_("Close"), permissions=["view"])
    def close(self, request, queryset):
        _run_on_each(self, request, queryset, services.fault_close, "is closed")


@admin.register(RecoverySummary)
class RecoverySummaryAdmin(admin.ModelAdmin):
    """Recovery metrics kept for review and trends; computed by the recovery, never edited."""

    list_display = ["fault", "level", "computed_at", "notify", "check_in", "mitigate", "recover", "compliance"]
    list_filter = ["level", "computed_at"]
    date_hierarchy = "computed_at"
    search_fields = ["fault__title"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description=_("time to notify"), ordering="time_to_notify")
    def notify(self, obj):
        return format_duration(obj.time_to_notify)

    @admin.display(description=_("time to check in"), ordering="time_to_check_in")
    def check_in(self, obj):
        return format_duration(obj.time_to_check_in)

    @admin.display(description=_("time to mitigate"), ordering="time_to_mitigate")
    def mitigate(self, obj):
        return format_duration(obj.time_to_mitigate)

    @admin.display(description=_("time to recover"), ordering="time_to_recover")
    def recover(self, obj):
        return format_duration(obj.time_to_recover)

    @admin.display(description=_("SLA compliance"))
    def compliance(self, obj):
        return "—" if obj.sla_compliance is None else f"{obj.sla_met}/{obj.sla_total} ({obj.sla_compliance:.0%})"

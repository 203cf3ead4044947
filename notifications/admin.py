from django.contrib import admin

from .models import Delivery, SandboxMessage


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = ["id", "fault", "channel", "transport", "recipient_label", "status", "attempts", "next_attempt_at", "created_at"]
    list_filter = ["status", "channel", "transport", "purpose"]
    search_fields = ["idempotency_key", "provider_key", "provider_id", "person__name", "target"]
    raw_id_fields = ["fault", "person"]
    # The outbox is written by the workers; edit it only through the services.
    readonly_fields = [f.name for f in Delivery._meta.fields]

    def has_add_permission(self, request):
        return False


@admin.register(SandboxMessage)
class SandboxMessageAdmin(admin.ModelAdmin):
    list_display = ["id", "fault", "channel", "recipient", "subject", "created_at"]
    list_filter = ["channel"]
    readonly_fields = [f.name for f in SandboxMessage._meta.fields]

    def has_add_permission(self, request):
        return False

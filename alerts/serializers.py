"""The generic alert format (documented in the OpenAPI schema) and what an endpoint answers."""

from rest_framework import serializers

from .models import Alert


class GenericAlertSerializer(serializers.Serializer):
    """One alert in the generic JSON format. Send one object, or {"alerts": [...]}."""

    title = serializers.CharField(help_text="What is wrong, e.g. “Checkout 5xx above 5 %”.")
    status = serializers.ChoiceField(choices=["firing", "resolved"], required=False, default="firing")
    fingerprint = serializers.CharField(
        required=False, help_text="Identifies the alert across notifications; default: a hash of title and labels."
    )
    severity = serializers.CharField(
        required=False, help_text="Matched by the integration's level rules (defaults: P1–P4, critical, error, warning)."
    )
    labels = serializers.DictField(child=serializers.CharField(), required=False)
    annotations = serializers.DictField(child=serializers.CharField(), required=False)
    description = serializers.CharField(required=False, help_text="Becomes the fault's impact.")
    url = serializers.URLField(required=False)
    metric = serializers.CharField(required=False)
    value = serializers.FloatField(required=False)
    starts_at = serializers.DateTimeField(required=False, help_text="RFC 3339 or epoch milliseconds; default now.")
    ends_at = serializers.DateTimeField(required=False)


class GenericAlertsSerializer(serializers.Serializer):
    alerts = GenericAlertSerializer(many=True)


class ReceivedSerializer(serializers.Serializer):
    stored = serializers.IntegerField(help_text="Alerts stored (new, or a new status).")
    duplicates = serializers.IntegerField(help_text="Notifications of an alert already stored with that status.")
    resolved = serializers.IntegerField()
    faults = serializers.ListField(child=serializers.IntegerField(), help_text="The faults these alerts are part of.")


class AlertSerializer(serializers.ModelSerializer):
    level = serializers.SerializerMethodField()
    integration = serializers.CharField(source="integration.name")

    class Meta:
        model = Alert
        fields = ["id", "integration", "fingerprint", "status", "title", "severity", "labels", "annotations",
                  "metric", "value", "level", "rule_name", "group_key", "starts_at", "ends_at", "received_at",
                  "last_received_at", "received_count"]

    def get_level(self, alert) -> str | None:
        return f"P{alert.level}" if alert.level else None

from rest_framework import serializers

from roster.models import Business, Person

from .models import Fault, Level, MitigationPlan, RecoverySummary, RoleAssignment, StatusUpdate, Task, TimelineEvent


class LevelField(serializers.Field):
    """A level as "P1".."P4"; also accepts 1..4."""

    default_error_messages = {"invalid": "Level must be one of P1, P2, P3, P4."}

    def to_internal_value(self, data):
        # Whole numbers only: 1.7 must not quietly become P1, and 1e999 must not crash.
        if isinstance(data, bool) or not isinstance(data, (int, str)):
            self.fail("invalid")
        if isinstance(data, str):
            text = data.strip().upper()
            data = text[1:] if text.startswith("P") else text
            if not (data.isascii() and data.isdigit()):
                self.fail("invalid")
        value = int(data)
        if value not in Level.values:
            self.fail("invalid")
        return value

    def to_representation(self, value):
        return Level(value).label


class IdField(serializers.PrimaryKeyRelatedField):
    """A primary key that must be a whole number (1e999 or 1.5 are input errors, not crashes)."""

    default_error_messages = {"incorrect_type": "Incorrect type. Expected pk value, received {data_type}."}

    def to_internal_value(self, data):
        if isinstance(data, bool) or not (
            isinstance(data, int) or (isinstance(data, str) and data.isascii() and data.isdigit())
        ):
            self.fail("incorrect_type", data_type=type(data).__name__)
        if int(data) > 2**63 - 1:
            self.fail("does_not_exist", pk_value=data)
        return super().to_internal_value(int(data))


class PersonRefSerializer(serializers.ModelSerializer):
    class Meta:
        model = Person
        fields = ["id", "name"]


class BusinessRefSerializer(serializers.ModelSerializer):
    class Meta:
        model = Business
        fields = ["id", "name", "slug"]


class PersonSerializer(serializers.ModelSerializer):
    class Meta:
        model = Person
        fields = ["id", "name", "email", "time_zone"]


class BusinessSerializer(serializers.ModelSerializer):
    depends_on = serializers.PrimaryKeyRelatedField(many=True, read_only=True)

    class Meta:
        model = Business
        fields = ["id", "name", "slug", "depends_on"]


class RoleAssignmentSerializer(serializers.ModelSerializer):
    person = PersonRefSerializer()

    class Meta:
        model = RoleAssignment
        fields = ["id", "role", "person", "assigned_at", "checked_in_at", "ended_at"]


class FaultSerializer(serializers.ModelSerializer):
    level = LevelField()
    affected_business = BusinessRefSerializer()
    suspected_cause_businesses = BusinessRefSerializer(many=True)
    roles = serializers.SerializerMethodField()

    class Meta:
        model = Fault
        fields = [
            "id",
            "title",
            "level",
            "status",
            "impact",
            "affected_business",
            "suspected_cause_businesses",
            "roles",
            "detected_at",
            "declared_at",
            "first_check_in_at",
            "mitigated_at",
            "recovered_at",
            "closed_at",
            "last_seq",
        ]

    def get_roles(self, fault) -> list[dict]:
        active = [r for r in fault.roles.all() if r.ended_at is None]
        return RoleAssignmentSerializer(active, many=True).data


class FaultDeclareSerializer(serializers.Serializer):
    title = serializers.CharField(max_length=200)
    level = LevelField()
    impact = serializers.CharField(required=False, allow_blank=True, default="")
    affected_business = IdField(queryset=Business.objects.all())
    suspected_cause_businesses = IdField(queryset=Business.objects.all(), many=True, required=False, default=list)
    detected_at = serializers.DateTimeField(required=False)
    commander = IdField(queryset=Person.objects.all(), required=False)
    fault_handler = IdField(queryset=Person.objects.all(), required=False)


class LevelChangeSerializer(serializers.Serializer):
    level = LevelField()
    reason = serializers.CharField(required=False, allow_blank=True, default="")


class ReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, default="")


class AssignSerializer(serializers.Serializer):
    person = IdField(queryset=Person.objects.all())
    role = serializers.ChoiceField(choices=RoleAssignment.Role.choices)


class SuspectSerializer(serializers.Serializer):
    business = IdField(queryset=Business.objects.all())


class CheckInSerializer(serializers.Serializer):
    person = IdField(
        queryset=Person.objects.all(), required=False, help_text="Defaults to the signed-in user's person."
    )


class TaskSerializer(serializers.ModelSerializer):
    assignee = PersonRefSerializer(read_only=True)

    class Meta:
        model = Task
        fields = [
            "id",
            "fault",
            "assignee",
            "kind",
            "title",
            "description",
            "status",
            "progress",
            "created_at",
            "due_at",
            "acknowledged_at",
            "completed_at",
        ]


class TaskCreateSerializer(serializers.Serializer):
    assignee = IdField(queryset=Person.objects.all())
    kind = serializers.ChoiceField(choices=Task.Kind.choices)
    title = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    due_at = serializers.DateTimeField(required=False)


class TaskUpdateSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=Task.Status.choices, required=False)
    progress = serializers.CharField(required=False, allow_blank=False)
    due_at = serializers.DateTimeField(required=False)

    def validate(self, attrs):
        if not attrs:
            raise serializers.ValidationError("Give at least one of status, progress, due_at.")
        return attrs


class PlanSerializer(serializers.ModelSerializer):
    expected_impact = LevelField()

    class Meta:
        model = MitigationPlan
        fields = [
            "id",
            "fault",
            "description",
            "expected_impact",
            "status",
            "proposed_at",
            "decided_at",
            "rejection_reason",
            "executed_at",
        ]


class PlanProposeSerializer(serializers.Serializer):
    description = serializers.CharField()
    expected_impact = LevelField()


class StatusUpdateSerializer(serializers.ModelSerializer):
    author = serializers.SerializerMethodField()

    class Meta:
        model = StatusUpdate
        fields = ["id", "fault", "kind", "body", "author", "posted_at"]

    def get_author(self, update) -> str | None:
        return update.author.get_username() if update.author else None


class StatusUpdatePostSerializer(serializers.Serializer):
    body = serializers.CharField()
    kind = serializers.ChoiceField(choices=StatusUpdate.Kind.choices, default=StatusUpdate.Kind.PROGRESS)


class TimelineEventSerializer(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor_label")
    at = serializers.DateTimeField(source="created_at")

    class Meta:
        model = TimelineEvent
        fields = ["seq", "kind", "actor", "data", "at"]


class RecoverySummarySerializer(serializers.ModelSerializer):
    level = LevelField()

    class Meta:
        model = RecoverySummary
        fields = ["fault", "computed_at", "level", "sla_met", "sla_total", "sla_compliance", "data"]


class MetricsQuerySerializer(serializers.Serializer):
    since = serializers.DateTimeField(required=False)
    until = serializers.DateTimeField(required=False)


class MetricsTrendSerializer(serializers.Serializer):
    levels = serializers.ListField(child=serializers.DictField())

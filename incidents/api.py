"""REST API under /api/v1/. Views validate input, ask a service, and render the result."""

import django_filters
from django.db.models import Avg, Count, Prefetch, Q, Sum
from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.filters import SearchFilter
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from roster.models import Business, Person

from . import permissions, selectors, services
from . import serializers as s
from .errors import ServiceError
from .models import Fault, Level, MitigationPlan, RecoverySummary, RoleAssignment, Task

TIMELINE_PAGE = 200


def exception_handler(exc, context):
    """Service refusals become 4xx with the service's sentence."""
    if isinstance(exc, ServiceError):
        return Response({"detail": exc.message, "code": exc.code}, status=exc.status_code)
    return drf_exception_handler(exc, context)


class FaultFilter(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=Fault.Status.choices)
    level = django_filters.MultipleChoiceFilter(choices=[(str(v), label) for v, label in Level.choices] + [
        (label, label) for label in Level.labels
    ], method="filter_level")
    business = django_filters.CharFilter(
        method="filter_business", help_text="A business id or slug: faults it is affected by or suspected of."
    )

    class Meta:
        model = Fault
        fields = ["status", "level", "business"]

    def filter_level(self, queryset, name, values):
        return queryset.filter(level__in=[int(v[1:]) if v.startswith("P") else int(v) for v in values])

    def filter_business(self, queryset, name, value):
        key = Q(affected_business__slug=value) | Q(suspected_cause_businesses__slug=value)
        if value.isascii() and value.isdigit() and len(value) < 19:
            key |= Q(affected_business_id=int(value)) | Q(suspected_cause_businesses__id=int(value))
        return queryset.filter(key).distinct()


def _validated(serializer_class, request, data_source="body", **kwargs):
    data = request.query_params if data_source == "query" else request.data
    serializer = serializer_class(data=data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class FaultViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Faults: list, declare, read, and one endpoint per action of the response."""

    serializer_class = s.FaultSerializer
    filterset_class = FaultFilter
    queryset = Fault.objects.select_related("affected_business").prefetch_related(
        "suspected_cause_businesses", Prefetch("roles", queryset=RoleAssignment.objects.select_related("person"))
    )

    def get_queryset(self):
        return selectors.visible_faults(self.request.user, super().get_queryset())

    def get_object(self, queryset=None):
        # Look the fault up among all faults, so that one the user may not see is a 403
        # that says so rather than a puzzling 404. Actions re-read it after the change
        # (`_fault_response`); only a plain read loads what the answer shows with it.
        pk = str(self.kwargs["pk"])
        readable = pk.isascii() and pk.isdigit() and len(pk) < 19
        fault = (queryset if queryset is not None else Fault.objects).filter(pk=int(pk)).first() if readable else None
        if fault is None:
            raise Http404(f"There is no fault {pk}.")
        if not permissions.can_view(self.request.user, fault):
            raise PermissionDenied("You may not see this fault.")
        return fault

    def retrieve(self, request, *args, **kwargs):
        fault = self.get_object(self.queryset)
        return Response(s.FaultSerializer(fault, context={"request": request}).data)

    def _fault_response(self, fault, code=status.HTTP_200_OK):
        fault = self.queryset.get(pk=fault.pk)
        return Response(s.FaultSerializer(fault, context={"request": self.request}).data, status=code)

    @extend_schema(request=s.FaultDeclareSerializer, responses={201: s.FaultSerializer})
    def create(self, request):
        if not permissions.can_declare(request.user):
            raise PermissionDenied("You may not declare faults.")
        data = _validated(s.FaultDeclareSerializer, request)
        fault = services.fault_declare(actor=request.user, **data)
        return self._fault_response(fault, status.HTTP_201_CREATED)

    @extend_schema(
        parameters=[OpenApiParameter("after", int, description="Only events with a larger seq.")],
        responses=s.TimelineEventSerializer(many=True),
    )
    @action(detail=True, methods=["get"])
    def timeline(self, request, pk=None):
        fault = self.get_object()
        raw = request.query_params.get("after", "0")
        try:
            after = int(raw)
            if not 0 <= after < 2**31:
                raise ValueError
        except ValueError:
            raise ValidationError({"after": "Give the last seq you have, a whole number of 0 or more."}) from None
        events = fault.timeline.filter(seq__gt=after).order_by("seq")[:TIMELINE_PAGE]
        return Response(s.TimelineEventSerializer(events, many=True).data)

    @extend_schema(request=s.AssignSerializer, responses=s.FaultSerializer)
    @action(detail=True, methods=["post"])
    def assign(self, request, pk=None):
        fault = self.get_object()
        data = _validated(s.AssignSerializer, request)
        services.role_assign(fault=fault, person=data["person"], role=data["role"], actor=request.user)
        return self._fault_response(fault)

    @extend_schema(request=s.SuspectSerializer, responses=s.FaultSerializer)
    @action(detail=True, methods=["post"])
    def suspects(self, request, pk=None):
        """Name one more suspected-cause business; its on-call emergency contacts are pulled in."""
        fault = self.get_object()
        data = _validated(s.SuspectSerializer, request)
        fault = services.fault_suspect_add(fault=fault, business=data["business"], actor=request.user)
        return self._fault_response(fault)

    @extend_schema(request=s.CheckInSerializer, responses=s.FaultSerializer)
    @action(detail=True, methods=["post"], url_path="check-in")
    def check_in(self, request, pk=None):
        fault = self.get_object()
        data = _validated(s.CheckInSerializer, request)
        person = data.get("person") or permissions.person_of(request.user)
        if person is None:
            raise ValidationError({"person": "Your account is not linked to a person; say whom to check in."})
        services.role_check_in(fault=fault, person=person, actor=request.user, via="api")
        return self._fault_response(fault)

    @extend_schema(request=s.LevelChangeSerializer, responses=s.FaultSerializer)
    @action(detail=True, methods=["post"])
    def level(self, request, pk=None):
        fault = self.get_object()
        data = _validated(s.LevelChangeSerializer, request)
        fault = services.fault_change_level(fault=fault, level=data["level"], reason=data["reason"], actor=request.user)
        return self._fault_response(fault)

    @extend_schema(request=None, responses=s.FaultSerializer)
    @action(detail=True, methods=["post"])
    def mitigated(self, request, pk=None):
        fault = services.fault_mark_mitigated(fault=self.get_object(), actor=request.user)
        return self._fault_response(fault)

    @extend_schema(request=None, responses=s.FaultSerializer)
    @action(detail=True, methods=["post"])
    def recovered(self, request, pk=None):
        fault = services.fault_mark_recovered(fault=self.get_object(), actor=request.user)
        return self._fault_response(fault)

    @extend_schema(request=None, responses=s.FaultSerializer)
    @action(detail=True, methods=["post"])
    def close(self, request, pk=None):
        fault = services.fault_close(fault=self.get_object(), actor=request.user)
        return self._fault_response(fault)

    @extend_schema(request=s.ReasonSerializer, responses=s.FaultSerializer)
    @action(detail=True, methods=["post"])
    def reopen(self, request, pk=None):
        fault = self.get_object()
        data = _validated(s.ReasonSerializer, request)
        fault = services.fault_reopen(fault=fault, reason=data["reason"], actor=request.user)
        return self._fault_response(fault)

    @extend_schema(responses=s.RecoverySummarySerializer)
    @action(detail=True, methods=["get"])
    def summary(self, request, pk=None):
        fault = self.get_object()
        summary = RecoverySummary.objects.filter(fault=fault).first()
        if summary is None:
            raise Http404(f"Fault #{fault.pk} has not recovered yet; its metrics summary comes with recovery.")
        return Response(s.RecoverySummarySerializer(summary).data)

    @extend_schema(
        request=None,
        responses={202: inline_serializer("ConferenceAccepted", fields={"detail": serializers.CharField()})},
    )
    @action(detail=True, methods=["post"])
    def conference(self, request, pk=None):
        """Start a video conference with the checked-in members; the link follows on the timeline."""
        services.conference_request(fault=self.get_object(), actor=request.user)
        return Response(
            {"detail": "Starting a video conference with everyone who has checked in; "
                       "the link will appear on the timeline and in the group."},
            status=status.HTTP_202_ACCEPTED,
        )

    # --- tasks ---

    @extend_schema(methods=["get"], responses=s.TaskSerializer(many=True))
    @extend_schema(methods=["post"], request=s.TaskCreateSerializer, responses={201: s.TaskSerializer})
    @action(detail=True, methods=["get", "post"])
    def tasks(self, request, pk=None):
        fault = self.get_object()
        if request.method == "GET":
            tasks = fault.tasks.select_related("assignee")
            return Response(s.TaskSerializer(tasks, many=True).data)
        data = _validated(s.TaskCreateSerializer, request)
        task = services.task_create(fault=fault, actor=request.user, **data)
        return Response(s.TaskSerializer(task).data, status=status.HTTP_201_CREATED)

    @extend_schema(methods=["get"], responses=s.TaskSerializer)
    @extend_schema(methods=["patch"], request=s.TaskUpdateSerializer, responses=s.TaskSerializer)
    @action(detail=True, methods=["get", "patch"], url_path=r"tasks/(?P<task_pk>\d+)")
    def task(self, request, pk=None, task_pk=None):
        fault = self.get_object()
        task = _child(Task.objects.select_related("assignee"), fault, task_pk, "task")
        if request.method == "GET":
            return Response(s.TaskSerializer(task).data)
        data = _validated(s.TaskUpdateSerializer, request)
        task = services.task_update(task=task, actor=request.user, **data)
        return Response(s.TaskSerializer(task).data)

    # --- plans ---

    @extend_schema(methods=["get"], responses=s.PlanSerializer(many=True))
    @extend_schema(methods=["post"], request=s.PlanProposeSerializer, responses={201: s.PlanSerializer})
    @action(detail=True, methods=["get", "post"])
    def plans(self, request, pk=None):
        fault = self.get_object()
        if request.method == "GET":
            return Response(s.PlanSerializer(fault.plans.all(), many=True).data)
        data = _validated(s.PlanProposeSerializer, request)
        plan = services.plan_propose(fault=fault, actor=request.user, **data)
        return Response(s.PlanSerializer(plan).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=s.PlanSerializer)
    @action(detail=True, methods=["post"], url_path=r"plans/(?P<plan_pk>\d+)/approve")
    def plan_approve(self, request, pk=None, plan_pk=None):
        plan = _child(MitigationPlan.objects, self.get_object(), plan_pk, "plan")
        return Response(s.PlanSerializer(services.plan_approve(plan=plan, actor=request.user)).data)

    @extend_schema(request=s.ReasonSerializer, responses=s.PlanSerializer)
    @action(detail=True, methods=["post"], url_path=r"plans/(?P<plan_pk>\d+)/reject")
    def plan_reject(self, request, pk=None, plan_pk=None):
        plan = _child(MitigationPlan.objects, self.get_object(), plan_pk, "plan")
        data = _validated(s.ReasonSerializer, request)
        return Response(s.PlanSerializer(services.plan_reject(plan=plan, reason=data["reason"], actor=request.user)).data)

    @extend_schema(request=None, responses=s.PlanSerializer)
    @action(detail=True, methods=["post"], url_path=r"plans/(?P<plan_pk>\d+)/execute")
    def plan_execute(self, request, pk=None, plan_pk=None):
        plan = _child(MitigationPlan.objects, self.get_object(), plan_pk, "plan")
        return Response(s.PlanSerializer(services.plan_execute(plan=plan, actor=request.user)).data)

    # --- updates ---

    @extend_schema(methods=["get"], responses=s.StatusUpdateSerializer(many=True))
    @extend_schema(methods=["post"], request=s.StatusUpdatePostSerializer, responses={201: s.StatusUpdateSerializer})
    @action(detail=True, methods=["get", "post"])
    def updates(self, request, pk=None):
        fault = self.get_object()
        if request.method == "GET":
            return Response(s.StatusUpdateSerializer(fault.updates.select_related("author"), many=True).data)
        data = _validated(s.StatusUpdatePostSerializer, request)
        update = services.status_update_post(fault=fault, actor=request.user, **data)
        return Response(s.StatusUpdateSerializer(update).data, status=status.HTTP_201_CREATED)


class MetricsTrendView(GenericAPIView):
    """Recovery metrics over time: per level, the mean seconds of each stage and SLA compliance."""

    serializer_class = s.MetricsTrendSerializer

    @extend_schema(
        parameters=[
            OpenApiParameter("since", str, description="ISO date or datetime; recoveries from then on."),
            OpenApiParameter("until", str, description="ISO date or datetime; recoveries before then."),
        ]
    )
    def get(self, request):
        if not request.user.has_perm("incidents.view_fault"):
            raise PermissionDenied("You may not see fault metrics.")
        query = _validated(s.MetricsQuerySerializer, request, data_source="query")
        summaries = RecoverySummary.objects.all()
        if query.get("since"):
            summaries = summaries.filter(computed_at__gte=query["since"])
        if query.get("until"):
            summaries = summaries.filter(computed_at__lt=query["until"])
        stages = ["declare", "notify", "check_in", "engage", "mitigate", "recover"]
        rows = (
            summaries.values("level")
            .order_by("level")
            .annotate(
                faults=Count("id"),
                sla_met=Sum("sla_met"),
                sla_total=Sum("sla_total"),
                **{f"mean_time_to_{k}": Avg(f"time_to_{k}") for k in stages},
            )
        )
        result = []
        for row in rows:
            row["level"] = Level(row["level"]).label
            row["sla_compliance"] = row["sla_met"] / row["sla_total"] if row["sla_total"] else None
            result.append(row)
        return Response({"levels": result})


class BusinessViewSet(viewsets.ReadOnlyModelViewSet):
    """The businesses a fault can affect or be suspected in: what `affected_business` takes."""

    serializer_class = s.BusinessSerializer
    queryset = Business.objects.prefetch_related("depends_on")
    filter_backends = [SearchFilter]
    search_fields = ["name", "slug"]


class PersonViewSet(viewsets.ReadOnlyModelViewSet):
    """People who can be given a role or a task; `?search=` finds them by name or email."""

    serializer_class = s.PersonSerializer
    queryset = Person.objects.all()
    filter_backends = [SearchFilter]
    search_fields = ["name", "email", "user__username"]


def _child(queryset, fault, pk, noun):
    obj = queryset.filter(fault=fault, pk=pk).first()
    if obj is None:
        raise Http404(f"Fault #{fault.pk} has no {noun} {pk}.")
    obj.fault = fault
    return obj

"""The endpoints monitoring calls: /api/v1/integrations/<token>/<kind>/, and a fault's alerts.

A sender learns everything from the status: 2xx only once the alerts are stored; 4xx (not
retried by Alertmanager) with a message for what no retry can fix; 429 with Retry-After over
the integration's rate; 5xx only when storing failed, so that the sender retries.
"""

import logging

from django.db import DatabaseError
from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers as drf_serializers
from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from incidents import permissions
from incidents.models import Fault

from . import heartbeats, ingest, sources, throttle
from .models import Alert, Integration
from .serializers import AlertSerializer, GenericAlertsSerializer, ReceivedSerializer

log = logging.getLogger(__name__)

MAX_BODY = 1024 * 1024
_ERROR = inline_serializer("AlertError", {"detail": drf_serializers.CharField()})


def _refuse(code: int, detail: str, **headers) -> Response:
    return Response({"detail": detail}, status=code, headers=headers)


class _Endpoint(APIView):
    """Token in the path, no session or CSRF: monitoring systems cannot log in."""

    authentication_classes = ()
    permission_classes = (AllowAny,)
    throttle_classes = ()
    kind: str = ""

    def post(self, request, token: str, kind: str | None = None):
        kind = kind or self.kind
        if int(request.META.get("CONTENT_LENGTH") or 0) > MAX_BODY:
            return _refuse(413, f"The body is larger than {MAX_BODY // 1024} KB; send fewer alerts per request.")
        integration = Integration.objects.filter(token=token, enabled=True).select_related("business").first()
        if integration is None:
            return _refuse(404, "No enabled integration has this URL.")
        if integration.kind != kind:
            return _refuse(400, f"This integration's URL ends in /{integration.kind}/, not /{kind}/.")
        wait = throttle.retry_after(integration.pk, integration.rate_limit)
        if wait:
            return _refuse(429, f"More than {integration.rate_limit} requests a minute; retry in {wait} s.",
                           **{"Retry-After": str(wait)})
        body = request.body
        if len(body) > MAX_BODY:
            return _refuse(413, f"The body is larger than {MAX_BODY // 1024} KB; send fewer alerts per request.")
        try:
            return Response(self.handle(integration, body, request.content_type or ""))
        except sources.Malformed as error:
            return _refuse(400, str(error))
        except DatabaseError:
            log.exception("storing alerts for integration %s failed", integration.pk)
            return _refuse(503, "The alerts could not be stored; retry.")

    def handle(self, integration: Integration, body: bytes, content_type: str) -> dict:
        incoming = sources.parse(integration.kind, body, content_type)
        return ingest.receive(integration, incoming).as_dict()


_responses = {
    200: ReceivedSerializer,
    400: OpenApiResponse(_ERROR, description="Malformed payload (not retried)."),
    404: OpenApiResponse(_ERROR, description="No enabled integration has this token."),
    413: OpenApiResponse(_ERROR, description="Body over 1 MB."),
    429: OpenApiResponse(_ERROR, description="Over the integration's rate; see Retry-After."),
    503: OpenApiResponse(_ERROR, description="Not stored; retry."),
}


class MonitoringWebhook(_Endpoint):
    @extend_schema(
        operation_id="integration_webhook",
        summary="Receive a monitoring system's webhook",
        description="Alertmanager (webhook version 4), Grafana alerting, or Alibaba Cloud CloudMonitor "
        "(form-encoded threshold callbacks, JSON event callbacks), in each vendor's own format.",
        request={"application/json": OpenApiTypes.OBJECT, "application/x-www-form-urlencoded": OpenApiTypes.OBJECT},
        responses=_responses,
    )
    def post(self, request, token: str, kind: str):
        return super().post(request, token, kind)


class GenericWebhook(_Endpoint):
    kind = Integration.Kind.GENERIC

    @extend_schema(
        operation_id="integration_generic",
        summary="Receive alerts in the generic JSON format",
        description="One alert object, or {\"alerts\": [...]}. An alert with the same fingerprint, status and "
        "severity as one already stored counts as a duplicate.",
        request=GenericAlertsSerializer,
        responses=_responses,
    )
    def post(self, request, token: str):
        return super().post(request, token)


class HeartbeatWebhook(_Endpoint):
    kind = Integration.Kind.HEARTBEAT

    @extend_schema(operation_id="integration_heartbeat", summary="Monitoring is alive", request=None,
                   responses=_responses)
    def post(self, request, token: str):
        return super().post(request, token)

    def handle(self, integration: Integration, body: bytes, content_type: str) -> dict:
        return heartbeats.beat(integration).as_dict()


class FaultAlerts(APIView):
    permission_classes = (IsAuthenticated,)

    @extend_schema(operation_id="fault_alerts", summary="The alerts that are part of a fault",
                   responses=AlertSerializer(many=True))
    def get(self, request, fault_id: int):
        fault = Fault.objects.filter(pk=fault_id).first()
        if fault is None:
            raise Http404(f"There is no fault {fault_id}.")
        if not permissions.can_view(request.user, fault):
            raise PermissionDenied("You may not see this fault.")
        alerts = Alert.objects.filter(fault=fault).select_related("integration").order_by("received_at", "id")[:500]
        return Response(AlertSerializer(alerts, many=True).data)

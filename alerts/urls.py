from django.urls import path, re_path

from . import views

urlpatterns = [
    path("integrations/<str:token>/generic/", views.GenericWebhook.as_view(), name="integration-generic"),
    path("integrations/<str:token>/heartbeat/", views.HeartbeatWebhook.as_view(), name="integration-heartbeat"),
    re_path(r"^integrations/(?P<token>[^/]+)/(?P<kind>alertmanager|grafana|aliyun-cloudmonitor)/$",
            views.MonitoringWebhook.as_view(), name="integration-webhook"),
    path("faults/<int:fault_id>/alerts/", views.FaultAlerts.as_view(), name="fault-alerts"),
]

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import RedirectView
from django.views.i18n import JavaScriptCatalog
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from . import views
from .health import healthz

pages = [
    path("faults/", views.fault_list, name="faults"),
    path("faults/new/", views.fault_declare, name="declare"),
    path("faults/<int:fault_id>/", views.fault_room, name="fault"),
    path("faults/<int:fault_id>/panels/", views.fault_room_panels, name="fault-panels"),
    path("faults/<int:fault_id>/act/<slug:action>/", views.fault_act, name="fault-act"),
]

urlpatterns = [
    path("", RedirectView.as_view(url="/faults/", permanent=False)),
    path("", include((pages, "warroom"))),
    path(
        "login/",
        auth_views.LoginView.as_view(template_name="warroom/login.html", next_page="/faults/"),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(next_page="/login/"), name="logout"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("jsi18n/", JavaScriptCatalog.as_view(), name="javascript-catalog"),
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("incidents.urls")),
    path("api/v1/", include("alerts.urls")),
    path("roster/", include("roster.urls")),
    path("notifications/", include("notifications.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
]

from django.urls import path
from rest_framework.routers import DefaultRouter

from .api import BusinessViewSet, FaultViewSet, MetricsTrendView, PersonViewSet

router = DefaultRouter()
router.register("faults", FaultViewSet, basename="fault")
router.register("businesses", BusinessViewSet, basename="business")
router.register("people", PersonViewSet, basename="person")

urlpatterns = [path("metrics/", MetricsTrendView.as_view(), name="metrics"), *router.urls]

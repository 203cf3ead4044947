from rest_framework.routers import DefaultRouter

from .api import BusinessViewSet, FaultViewSet, PersonViewSet

router = DefaultRouter()
router.register("faults", FaultViewSet, basename="fault")
router.register("businesses", BusinessViewSet, basename="business")
router.register("people", PersonViewSet, basename="person")

urlpatterns = router.urls

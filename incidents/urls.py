from rest_framework.routers import DefaultRouter

from .api import FaultViewSet

router = DefaultRouter()
router.register("faults", FaultViewSet, basename="fault")

urlpatterns = router.urls

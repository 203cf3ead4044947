from django.urls import path

from .consumers import FaultConsumer

websocket_urlpatterns = [
    path("ws/faults/<int:fault_id>/", FaultConsumer.as_asgi()),
]

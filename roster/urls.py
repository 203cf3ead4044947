from django.urls import path

from . import views

app_name = "roster"

urlpatterns = [
    path("calendar/schedule/<int:pk>/<str:token>.ics", views.schedule_calendar, name="schedule-calendar"),
    path("calendar/person/<int:pk>/<str:token>.ics", views.person_calendar, name="person-calendar"),
]

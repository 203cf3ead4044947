"""Calendar feeds. The secret token in the URL is the only credential: calendar apps
subscribe by URL and cannot log in. A wrong token looks exactly like a missing schedule."""

import secrets

from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404

from . import calendar
from .models import Person, Schedule


def _check(token: str, expected: str) -> None:
    if not secrets.compare_digest(token.encode(), expected.encode()):
        raise Http404


def _ics(body: bytes, filename: str) -> HttpResponse:
    response = HttpResponse(body, content_type="text/calendar; charset=utf-8")
    response["Content-Disposition"] = f'inline; filename="{filename}"'
    response["Cache-Control"] = "private, max-age=300"
    return response


def schedule_calendar(request, pk: int, token: str) -> HttpResponse:
    schedule = get_object_or_404(Schedule, pk=pk)
    _check(token, schedule.calendar_token)
    found = calendar.schedule_feed_shifts(schedule)
    return _ics(calendar.render(name=f"On call: {schedule.name}", shifts=found, uid_prefix="schedule"), f"{schedule.slug}.ics")


def person_calendar(request, pk: int, token: str) -> HttpResponse:
    person = get_object_or_404(Person, pk=pk)
    _check(token, person.calendar_token)
    found = calendar.person_feed_shifts(person)
    return _ics(
        calendar.render(name=f"On call: {person.name}", shifts=found, uid_prefix=f"person-{person.pk}"), "on-call.ics"
    )

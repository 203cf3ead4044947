"""iCalendar (RFC 5545) feeds of on-call shifts, for Google Calendar and Outlook subscriptions."""

import datetime as dt

from icalendar import Calendar, Event

from django.utils import timezone

from . import selectors
from .models import Person, Schedule
from .selectors import Shift

# Calendar apps re-fetch a subscription every few hours; this window covers what people look at.
PAST = dt.timedelta(days=14)
FUTURE = dt.timedelta(days=90)


# Shifts are computed from further back and those that ended before the window dropped, so
# that the first event keeps its real start (and its UID) instead of starting at "now - 14 days".
LOOKBACK = dt.timedelta(days=31)


def feed_window(at: dt.datetime | None = None) -> tuple[dt.datetime, dt.datetime]:
    at = at or timezone.now()
    return at - PAST, at + FUTURE


def schedule_feed_shifts(schedule: Schedule) -> list[Shift]:
    start, end = feed_window()
    return [s for s in selectors.shifts(schedule=schedule, start=start - LOOKBACK, end=end) if s.end > start]


def person_feed_shifts(person: Person) -> list[Shift]:
    start, end = feed_window()
    return [s for s in selectors.person_shifts(person=person, start=start - LOOKBACK, end=end) if s.end > start]


def render(*, name: str, shifts: list[Shift], uid_prefix: str) -> bytes:
    """The shifts as a VCALENDAR with one VEVENT each (UTC times, stable UIDs)."""
    calendar = Calendar()
    calendar.add("prodid", "-//War Room//Roster//EN")
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    calendar.add("x-wr-calname", name)
    stamp = timezone.now()
    for shift in shifts:
        event = Event()
        names = ", ".join(p.name for p in shift.people)
        event.add("uid", f"{uid_prefix}-{shift.schedule.pk}-{shift.start:%Y%m%dT%H%M%SZ}@warroom")
        event.add("summary", f"On call: {names} ({shift.schedule.name})")
        event.add("description", f"{shift.source}: {shift.label}" if shift.label else shift.source)
        event.add("dtstart", shift.start.astimezone(dt.timezone.utc))
        event.add("dtend", shift.end.astimezone(dt.timezone.utc))
        event.add("dtstamp", stamp.astimezone(dt.timezone.utc))
        event.add("transp", "TRANSPARENT")
        calendar.add_component(event)
    return calendar.to_ical()

import datetime as dt

import pytest
from django.urls import reverse
from icalendar import Calendar

from roster import calendar, selectors
from roster.models import Rotation

from . import factories as f
from .factories import at

pytestmark = pytest.mark.django_db
Z = "Europe/Berlin"


@pytest.fixture
def berlin(clock):
    """A weekly Berlin rotation over the spring DST change, with one override; now is 20 March 2026."""
    clock.freeze(at(Z, 2026, 3, 20, 12))
    a, b, cover = f.people("Anna", "Ben", "Cover")
    schedule = f.schedule(name="Payments primary", time_zone=Z)
    f.rotation(schedule, [a, b], start_date=dt.date(2026, 3, 2), hand_off_time=dt.time(10, 0), unit=Rotation.Unit.WEEKS)
    f.override(schedule, cover, at(Z, 2026, 3, 29, 1), at(Z, 2026, 3, 29, 5), reason="Anna travels")
    return schedule, a, b, cover


def events_of(response):
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/calendar")
    parsed = Calendar.from_ical(response.content)
    return [
        (e.decoded("dtstart"), e.decoded("dtend"), str(e.get("summary")), str(e.get("uid")))
        for e in parsed.walk("VEVENT")
    ]


def test_the_schedule_feed_parses_and_matches_the_shifts_selector(client, berlin):
    schedule, a, b, cover = berlin
    url = reverse("roster:schedule-calendar", args=[schedule.pk, schedule.calendar_token])

    found = events_of(client.get(url))

    start, end = calendar.feed_window()
    expected = [s for s in selectors.shifts(schedule=schedule, start=start - calendar.LOOKBACK, end=end) if s.end > start]
    assert len(expected) > 5
    assert expected[0].start == at(Z, 2026, 3, 2, 10)  # the rotation's real first hand-off, not the window's edge
    assert [(s, e) for s, e, *_ in found] == [(x.start, x.end) for x in expected]
    assert [summary for _, _, summary, _ in found] == [
        f"On call: {', '.join(p.name for p in x.people)} (Payments primary)" for x in expected
    ]
    assert len({uid for *_, uid in found}) == len(found)


def test_the_feed_keeps_the_local_hand_off_time_across_dst(client, berlin):
    schedule, a, b, cover = berlin
    url = reverse("roster:schedule-calendar", args=[schedule.pk, schedule.calendar_token])

    starts = [s for s, _, summary, _ in events_of(client.get(url)) if "Cover" not in summary]

    assert at(Z, 2026, 3, 23, 10) in starts  # 09:00 UTC
    assert at(Z, 2026, 3, 30, 10) in starts  # 08:00 UTC, after the change
    # Every layer shift starts at 10:00 Berlin time, except the one resuming after the override at 05:00.
    assert {s.astimezone(schedule.zone).hour for s in starts} == {10, 5}


def test_the_person_feed_holds_only_that_person_s_shifts(client, berlin):
    schedule, a, b, cover = berlin
    other = f.schedule(name="Other", time_zone="Asia/Shanghai")
    f.rotation(other, [b], start_date=dt.date(2026, 3, 1))

    found = events_of(client.get(reverse("roster:person-calendar", args=[cover.pk, cover.calendar_token])))
    assert [(s, e) for s, e, *_ in found] == [(at(Z, 2026, 3, 29, 1), at(Z, 2026, 3, 29, 5))]

    summaries = [summary for *_, summary, _ in events_of(
        client.get(reverse("roster:person-calendar", args=[b.pk, b.calendar_token])))]
    assert {"On call: Ben (Payments primary)", "On call: Ben (Other)"} == set(summaries)


def test_a_wrong_token_is_a_404(client, berlin):
    schedule, a, b, cover = berlin

    assert client.get(reverse("roster:schedule-calendar", args=[schedule.pk, "guess"])).status_code == 404
    assert client.get(reverse("roster:person-calendar", args=[a.pk, b.calendar_token])).status_code == 404


def test_every_person_and_schedule_gets_a_different_token():
    assert f.person().calendar_token != f.person().calendar_token
    assert f.schedule().calendar_token != f.schedule().calendar_token

import datetime as dt

import pytest

from roster import selectors
from roster.models import Rotation

from . import factories as f
from .factories import at

pytestmark = pytest.mark.django_db

HOUR = dt.timedelta(hours=1)
SECOND = dt.timedelta(seconds=1)


def test_the_incoming_person_is_on_call_at_the_hand_off_instant_and_the_outgoing_one_is_not():
    a, b = f.people("A", "B")
    schedule = f.schedule(time_zone="Asia/Shanghai")
    f.rotation(schedule, [a, b], start_date=dt.date(2026, 6, 1), hand_off_time=dt.time(9, 0))

    hand_off = at("Asia/Shanghai", 2026, 6, 2, 9, 0)
    assert selectors.on_call(schedule=schedule, at=hand_off - SECOND) == [a]
    assert selectors.on_call(schedule=schedule, at=hand_off) == [b]


def test_a_daily_berlin_hand_off_stays_at_nine_when_the_clocks_go_forward():
    a, b, c = f.people("A", "B", "C")
    schedule = f.schedule(time_zone="Europe/Berlin")
    f.rotation(schedule, [a, b, c], start_date=dt.date(2026, 3, 27), hand_off_time=dt.time(9, 0))

    # Sunday 29 March 2026 02:00 CET → 03:00 CEST.
    assert selectors.on_call(schedule=schedule, at=at("Europe/Berlin", 2026, 3, 29, 8, 59, 59)) == [b]
    assert selectors.on_call(schedule=schedule, at=at("Europe/Berlin", 2026, 3, 29, 9, 0)) == [c]
    assert at("Europe/Berlin", 2026, 3, 29, 9).astimezone(dt.timezone.utc).hour == 7  # CEST

    found = selectors.shifts(
        schedule=schedule, start=at("Europe/Berlin", 2026, 3, 28, 9), end=at("Europe/Berlin", 2026, 3, 30, 9)
    )
    assert [(s.people, s.end - s.start) for s in found] == [((b,), 23 * HOUR), ((c,), 24 * HOUR)]


def test_a_daily_berlin_hand_off_stays_at_nine_when_the_clocks_go_back():
    a, b = f.people("A", "B")
    schedule = f.schedule(time_zone="Europe/Berlin")
    f.rotation(schedule, [a, b], start_date=dt.date(2026, 10, 24), hand_off_time=dt.time(9, 0))

    # Sunday 25 October 2026 03:00 CEST → 02:00 CET: that day's shift is 25 hours long.
    found = selectors.shifts(
        schedule=schedule, start=at("Europe/Berlin", 2026, 10, 24, 9), end=at("Europe/Berlin", 2026, 10, 26, 9)
    )
    assert [(s.people, s.end - s.start) for s in found] == [((a,), 25 * HOUR), ((b,), 24 * HOUR)]
    assert [s.start.astimezone(schedule.zone).hour for s in found] == [9, 9]
    assert selectors.on_call(schedule=schedule, at=at("Europe/Berlin", 2026, 10, 25, 8, 59, 59)) == [a]
    assert selectors.on_call(schedule=schedule, at=at("Europe/Berlin", 2026, 10, 25, 9)) == [b]


def test_a_weekly_new_york_rotation_hands_off_on_monday_morning_local_time_across_dst():
    a, b = f.people("A", "B")
    schedule = f.schedule(time_zone="America/New_York")
    # Mondays at 10:00; the US clocks go forward on Sunday 8 March 2026.
    f.rotation(schedule, [a, b], start_date=dt.date(2026, 3, 2), hand_off_time=dt.time(10, 0), unit=Rotation.Unit.WEEKS)

    utc = dt.timezone.utc
    assert selectors.on_call(schedule=schedule, at=dt.datetime(2026, 3, 9, 13, 59, 59, tzinfo=utc)) == [a]
    assert selectors.on_call(schedule=schedule, at=dt.datetime(2026, 3, 9, 14, 0, tzinfo=utc)) == [b]  # 10:00 EDT
    first, second = selectors.shifts(
        schedule=schedule, start=at("America/New_York", 2026, 3, 2, 10), end=at("America/New_York", 2026, 3, 16, 10)
    )
    assert first.end - first.start == dt.timedelta(days=7) - HOUR
    assert second.end - second.start == dt.timedelta(days=7)


def test_hourly_shifts_skip_the_hour_that_new_york_clocks_jump_over():
    a, b, c, d = f.people("A", "B", "C", "D")
    schedule = f.schedule(time_zone="America/New_York")
    f.rotation(
        schedule, [a, b, c, d], start_date=dt.date(2026, 3, 8), hand_off_time=dt.time(0, 0), unit=Rotation.Unit.HOURS
    )

    utc = dt.timezone.utc
    found = selectors.shifts(
        schedule=schedule, start=dt.datetime(2026, 3, 8, 5, tzinfo=utc), end=dt.datetime(2026, 3, 8, 9, tzinfo=utc)
    )
    # 00:00 EST A, 01:00 EST B, 02:00 does not exist (C's hour), 03:00 EDT D, 04:00 EDT A.
    assert [(s.start.hour, s.people) for s in found] == [(5, (a,)), (6, (b,)), (7, (d,)), (8, (a,))]
    assert all(s.end - s.start == HOUR for s in found)


def test_hourly_shifts_in_the_repeated_autumn_hour_are_never_ambiguous():
    a, b = f.people("A", "B")
    schedule = f.schedule(time_zone="America/New_York")
    f.rotation(schedule, [a, b], start_date=dt.date(2026, 11, 1), hand_off_time=dt.time(0, 0), unit=Rotation.Unit.HOURS)

    utc = dt.timezone.utc
    # 1 November 2026: 01:00–02:00 happens twice (EDT, then EST). The 01:00 shift covers both.
    found = selectors.shifts(
        schedule=schedule, start=dt.datetime(2026, 11, 1, 4, tzinfo=utc), end=dt.datetime(2026, 11, 1, 8, tzinfo=utc)
    )
    assert [(s.start.hour, s.end.hour, s.people) for s in found] == [(4, 5, (a,)), (5, 7, (b,)), (7, 8, (a,))]


def test_twelve_hour_shanghai_shifts_hand_off_at_eight_and_twenty_local():
    day, night = f.people("Day", "Night")
    schedule = f.schedule(time_zone="Asia/Shanghai")
    f.rotation(
        schedule, [day, night], start_date=dt.date(2026, 1, 5), hand_off_time=dt.time(8, 0), length=12,
        unit=Rotation.Unit.HOURS,
    )

    utc = dt.timezone.utc
    assert selectors.on_call(schedule=schedule, at=dt.datetime(2026, 7, 1, 0, 0, tzinfo=utc)) == [day]  # 08:00 CST
    assert selectors.on_call(schedule=schedule, at=dt.datetime(2026, 7, 1, 11, 59, 59, tzinfo=utc)) == [day]
    assert selectors.on_call(schedule=schedule, at=dt.datetime(2026, 7, 1, 12, 0, tzinfo=utc)) == [night]


def test_nobody_is_on_call_before_a_rotation_starts():
    a = f.person("A")
    schedule = f.schedule(time_zone="Asia/Shanghai")
    f.rotation(schedule, [a], start_date=dt.date(2026, 6, 1), hand_off_time=dt.time(9, 0))

    assert selectors.on_call(schedule=schedule, at=at("Asia/Shanghai", 2026, 6, 1, 8, 59)) == []
    assert selectors.on_call(schedule=schedule, at=at("Asia/Shanghai", 2026, 6, 1, 9, 0)) == [a]


def test_members_take_turns_in_their_listed_order_not_their_creation_order():
    a, b, c = f.people("A", "B", "C")
    schedule = f.schedule()
    rotation = f.rotation(schedule, [a, b, c], start_date=dt.date(2026, 6, 1))
    rotation.rotation_members.filter(person=c).update(position=0)

    found = selectors.shifts(
        schedule=schedule, start=at("Asia/Shanghai", 2026, 6, 1, 9), end=at("Asia/Shanghai", 2026, 6, 4, 9)
    )
    assert [s.people for s in found] == [(c,), (a,), (b,)]


def test_on_call_reads_the_product_clock_when_no_instant_is_given(clock):
    a, b = f.people("A", "B")
    schedule = f.schedule()
    f.rotation(schedule, [a, b], start_date=dt.date(2026, 6, 1), hand_off_time=dt.time(9, 0))

    clock.freeze(at("Asia/Shanghai", 2026, 6, 2, 8, 59, 59))
    assert selectors.on_call(schedule=schedule) == [a]
    clock.advance(SECOND)
    assert selectors.on_call(schedule=schedule) == [b]

import datetime as dt

import pytest

from roster import selectors
from roster.models import Rotation, Weekday

from . import factories as f
from .factories import at

pytestmark = pytest.mark.django_db

WEEKEND = [Weekday.SATURDAY, Weekday.SUNDAY]
Z = "Europe/Berlin"


@pytest.fixture
def weekday_and_weekend():
    """Layer 1: daily rotation every day. Layer 2: weekly rotation covering Sat 09:00 → Mon 09:00."""
    a, b, w1, w2 = f.people("A", "B", "Weekend 1", "Weekend 2")
    schedule = f.schedule(time_zone=Z)
    f.rotation(schedule, [a, b], start_date=dt.date(2026, 3, 2), name="Weekdays", layer=1)
    f.rotation(
        schedule, [w1, w2], start_date=dt.date(2026, 2, 28), name="Weekends", layer=2, weekdays=WEEKEND,
        unit=Rotation.Unit.WEEKS,
    )
    return schedule, (a, b, w1, w2)


def test_the_weekend_layer_wins_on_weekends_and_the_weekday_layer_shows_through_otherwise(weekday_and_weekend):
    schedule, (a, b, w1, w2) = weekday_and_weekend

    assert selectors.on_call(schedule=schedule, at=at(Z, 2026, 3, 6, 12)) == [a]  # Friday, day 5 of layer 1
    assert selectors.on_call(schedule=schedule, at=at(Z, 2026, 3, 7, 8, 59)) == [a]  # Saturday before hand-off
    assert selectors.on_call(schedule=schedule, at=at(Z, 2026, 3, 7, 9, 0)) == [w2]  # second weekend
    assert selectors.on_call(schedule=schedule, at=at(Z, 2026, 3, 9, 8, 59, 59)) == [w2]  # Monday before 09:00
    # Hidden weekend days still used up layer 1's turns (7th B, 8th A), so Monday is B's.
    assert selectors.on_call(schedule=schedule, at=at(Z, 2026, 3, 9, 9, 0)) == [b]


def test_the_shifts_of_a_week_show_where_each_layer_answers(weekday_and_weekend):
    schedule, (a, b, w1, w2) = weekday_and_weekend

    found = selectors.shifts(schedule=schedule, start=at(Z, 2026, 3, 5, 9), end=at(Z, 2026, 3, 10, 9))
    assert [(s.start.astimezone(schedule.zone).day, s.people, s.label) for s in found] == [
        (5, (b,), "Weekdays"),
        (6, (a,), "Weekdays"),
        (7, (w2,), "Weekends"),
        (9, (b,), "Weekdays"),
    ]
    assert found[2].end == at(Z, 2026, 3, 9, 9)


def test_two_rotations_on_the_same_layer_are_both_on_call():
    primary, secondary = f.people("Primary", "Secondary")
    schedule = f.schedule()
    f.rotation(schedule, [primary], name="Primary")
    f.rotation(schedule, [secondary], name="Secondary")

    assert selectors.on_call(schedule=schedule, at=at("Asia/Shanghai", 2026, 6, 1, 12)) == [primary, secondary]


def test_a_higher_layer_that_has_not_started_yet_lets_the_lower_one_answer():
    old, new = f.people("Old", "New")
    schedule = f.schedule()
    f.rotation(schedule, [old], layer=1)
    f.rotation(schedule, [new], layer=5, start_date=dt.date(2026, 7, 1))

    assert selectors.on_call(schedule=schedule, at=at("Asia/Shanghai", 2026, 6, 30, 12)) == [old]
    assert selectors.on_call(schedule=schedule, at=at("Asia/Shanghai", 2026, 7, 1, 9)) == [new]


def test_a_schedule_without_rotations_has_nobody_on_call():
    schedule = f.schedule()

    assert selectors.on_call(schedule=schedule, at=at("Asia/Shanghai", 2026, 6, 1, 12)) == []
    assert selectors.shifts(schedule=schedule, start=at("Asia/Shanghai", 2026, 6, 1), end=at("Asia/Shanghai", 2026, 6, 8)) == []

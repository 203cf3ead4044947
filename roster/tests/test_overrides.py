import datetime as dt

import pytest
from django.core.exceptions import ValidationError

from roster import selectors
from roster.models import Override

from . import factories as f
from .factories import at

pytestmark = pytest.mark.django_db
Z = "America/New_York"


@pytest.fixture
def rotation_of_two():
    a, b, cover = f.people("A", "B", "Cover")
    schedule = f.schedule(time_zone=Z)
    f.rotation(schedule, [a, b], start_date=dt.date(2026, 3, 2), hand_off_time=dt.time(9, 0))
    return schedule, a, b, cover


def test_an_override_wins_over_the_rotation_for_exactly_its_window(rotation_of_two):
    schedule, a, b, cover = rotation_of_two
    start, end = at(Z, 2026, 3, 2, 12), at(Z, 2026, 3, 2, 18)
    f.override(schedule, cover, start, end, reason="A at the dentist")

    assert selectors.on_call(schedule=schedule, at=start - dt.timedelta(seconds=1)) == [a]
    assert selectors.on_call(schedule=schedule, at=start) == [cover]
    assert selectors.on_call(schedule=schedule, at=end - dt.timedelta(seconds=1)) == [cover]
    assert selectors.on_call(schedule=schedule, at=end) == [a]


def test_the_shifts_split_around_an_override(rotation_of_two):
    schedule, a, b, cover = rotation_of_two
    f.override(schedule, cover, at(Z, 2026, 3, 3, 6), at(Z, 2026, 3, 3, 12), reason="Swap")

    found = selectors.shifts(schedule=schedule, start=at(Z, 2026, 3, 2, 9), end=at(Z, 2026, 3, 4, 9))
    assert [(s.start, s.end, s.people, s.source) for s in found] == [
        (at(Z, 2026, 3, 2, 9), at(Z, 2026, 3, 3, 6), (a,), "layer"),
        (at(Z, 2026, 3, 3, 6), at(Z, 2026, 3, 3, 12), (cover,), "override"),
        (at(Z, 2026, 3, 3, 12), at(Z, 2026, 3, 4, 9), (b,), "layer"),
    ]


def test_an_override_covers_a_schedule_that_has_no_rotation():
    cover = f.person("Cover")
    schedule = f.schedule(time_zone=Z)
    f.override(schedule, cover, at(Z, 2026, 3, 8, 0), at(Z, 2026, 3, 9, 0))

    assert selectors.on_call(schedule=schedule, at=at(Z, 2026, 3, 8, 12)) == [cover]
    found = selectors.shifts(schedule=schedule, start=at(Z, 2026, 3, 7), end=at(Z, 2026, 3, 10))
    assert [(s.start, s.end) for s in found] == [(at(Z, 2026, 3, 8, 0), at(Z, 2026, 3, 9, 0))]
    assert found[0].end - found[0].start == dt.timedelta(hours=23)  # the day the clocks go forward


def test_overlapping_overrides_put_both_people_on_call(rotation_of_two):
    schedule, a, b, cover = rotation_of_two
    second = f.person("Second")
    f.override(schedule, cover, at(Z, 2026, 3, 2, 10), at(Z, 2026, 3, 2, 14))
    f.override(schedule, second, at(Z, 2026, 3, 2, 12), at(Z, 2026, 3, 2, 16))

    assert selectors.on_call(schedule=schedule, at=at(Z, 2026, 3, 2, 13)) == [cover, second]


def test_an_override_that_ends_before_it_starts_is_rejected_with_a_message(rotation_of_two):
    schedule, a, b, cover = rotation_of_two
    bad = Override(schedule=schedule, person=cover, start=at(Z, 2026, 3, 2, 12), end=at(Z, 2026, 3, 2, 11))

    with pytest.raises(ValidationError) as error:
        bad.full_clean()
    assert "ends before it starts" in str(error.value.message_dict["end"])

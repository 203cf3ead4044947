import datetime as dt

import pytest

from roster import selectors
from roster.models import Schedule

from . import factories as f
from .factories import at

pytestmark = pytest.mark.django_db


def test_the_fault_handler_on_duty_is_whoever_is_on_call_on_the_fault_handler_schedule():
    first, second = f.people("First", "Second")
    schedule = Schedule.objects.get(purpose=Schedule.Purpose.FAULT_HANDLER)
    f.rotation(schedule, [first, second], start_date=dt.date(2026, 6, 1), hand_off_time=dt.time(9, 0))

    person, why = selectors.fault_handler_on_duty(at=at("Asia/Shanghai", 2026, 6, 2, 9))

    assert person == second
    assert why["chosen"] == {"schedule": {"id": schedule.pk, "name": "Fault handler on duty"}}


def test_nobody_handles_faults_when_nobody_is_on_call_and_the_reason_is_given():
    person, why = selectors.fault_handler_on_duty(at=at("Asia/Shanghai", 2026, 6, 2, 9))

    assert person is None
    assert why["fallbacks"] == ["nobody is on call on Fault handler on duty"]


def test_nobody_handles_faults_when_no_schedule_is_marked_for_it():
    Schedule.objects.filter(purpose=Schedule.Purpose.FAULT_HANDLER).update(purpose=Schedule.Purpose.GENERAL)

    person, why = selectors.fault_handler_on_duty(at=at("Asia/Shanghai", 2026, 6, 2, 9))

    assert person is None
    assert "no schedule" in why["fallbacks"][0]

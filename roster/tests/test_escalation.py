import datetime as dt

import pytest
from django.core.exceptions import ValidationError

from roster import selectors
from roster.models import CandidateKind, EscalationStep

from . import factories as f
from .factories import at

pytestmark = pytest.mark.django_db
NOW = at("Asia/Shanghai", 2026, 6, 1, 12)
MIN = dt.timedelta(minutes=1)


@pytest.fixture
def policy_and_business():
    on_call, stability, leader = f.people("On call", "Stability", "Leader")
    schedule = f.schedule()
    f.rotation(schedule, [on_call], start_date=dt.date(2026, 1, 1))
    policy = f.escalation_policy(
        (0, {"kind": CandidateKind.SCHEDULE, "schedule": schedule}),
        (5, {"kind": CandidateKind.STABILITY_CONTACT}),
        (15, {"kind": CandidateKind.TEAM_LEADER, "team": f.team("Stability", leader=leader)}),
        repeat_every=10,
        repeat_limit=2,
    )
    business = f.business(stability_contact=stability, escalation_policy=policy)
    return business, on_call, stability, leader


def test_the_steps_resolve_to_people_in_order(policy_and_business):
    business, on_call, stability, leader = policy_and_business

    pages = selectors.escalation_steps(business=business, at=NOW)

    assert [(p.after, p.people) for p in pages] == [(0 * MIN, [on_call]), (5 * MIN, [stability]), (15 * MIN, [leader])]


def test_only_the_steps_whose_time_has_come_are_due(policy_and_business):
    business, on_call, stability, leader = policy_and_business

    assert [p.people for p in selectors.escalation_due(business=business, waited=4 * MIN, at=NOW)] == [[on_call]]
    assert len(selectors.escalation_due(business=business, waited=5 * MIN, at=NOW)) == 2


def test_the_last_step_repeats_at_its_cadence_up_to_the_limit(policy_and_business):
    business, on_call, stability, leader = policy_and_business

    pages = selectors.escalation_due(business=business, waited=60 * MIN, at=NOW)

    assert [(p.after, p.repeat) for p in pages[2:]] == [(15 * MIN, 0), (25 * MIN, 1), (35 * MIN, 2)]
    assert all(p.people == [leader] for p in pages[2:])


def test_a_step_whose_target_has_nobody_says_why(policy_and_business):
    business, *_ = policy_and_business
    business.stability_contact = None
    business.save()

    page = selectors.escalation_steps(business=business, at=NOW)[1]

    assert page.people == []
    assert page.reason == f"{business} has no stability contact"


def test_businesses_without_a_policy_use_the_default_one():
    person = f.person("Default target")
    default = f.escalation_policy((0, {"kind": CandidateKind.PERSON, "person": person}), is_default=True)

    assert selectors.escalation_policy_for(business=f.business()) == default
    assert [p.people for p in selectors.escalation_steps(business=f.business(), at=NOW)] == [[person]]


def test_a_step_without_a_target_is_rejected_with_a_message():
    policy = f.escalation_policy()
    step = EscalationStep(policy=policy, position=1, after_minutes=5, kind=CandidateKind.SCHEDULE)

    with pytest.raises(ValidationError) as error:
        step.full_clean()
    assert "Choose the schedule: “Whoever is on call on a schedule” needs one." in str(error.value.message_dict["schedule"])

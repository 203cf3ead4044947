import datetime as dt

import pytest

from roster import selectors
from roster.models import CandidateKind, CommanderRule, Schedule, Team

from . import factories as f
from .factories import at

pytestmark = pytest.mark.django_db
NOW = at("Asia/Shanghai", 2026, 6, 1, 12)


def shipped():
    """The shipped stability department team and on-duty manager schedule, filled in."""
    leader, manager = f.people("Stability leader", "On-duty manager")
    team = Team.objects.get(slug="stability-department")
    managers = Schedule.objects.get(slug="on-duty-managers")
    return team, leader, managers, manager


def test_the_shipped_rules_reproduce_the_fault_process():
    kinds = {
        rule.level: [(c.kind, c.team and c.team.slug, c.schedule and c.schedule.slug) for c in rule.candidates.all()]
        for rule in CommanderRule.objects.prefetch_related("candidates__team", "candidates__schedule")
    }
    severe = [
        (CandidateKind.TEAM_LEADER, "stability-department", None),
        (CandidateKind.SCHEDULE, None, "on-duty-managers"),
    ]
    business = [(CandidateKind.TECHNICAL_LEADER, None, None), (CandidateKind.STABILITY_CONTACT, None, None)]
    assert kinds == {1: severe, 2: severe, 3: business, 4: business}
    assert Schedule.objects.get(purpose=Schedule.Purpose.FAULT_HANDLER).slug == "fault-handler-on-duty"


@pytest.mark.parametrize("level", [1, 2])
def test_a_severe_fault_is_commanded_by_the_stability_department_leader(level):
    team, leader, managers, manager = shipped()
    team.leader = leader
    team.save()
    f.rotation(managers, [manager], start_date=dt.date(2026, 1, 1))

    person, why = selectors.choose_commander(level=level, business=f.business(), at=NOW)

    assert person == leader
    assert why == {
        "rule": f"P{level}",
        "chosen": {"position": 1, "candidate": "A team's leader: Stability department"},
        "fallbacks": [],
    }


@pytest.mark.parametrize("level", [1, 2])
def test_a_severe_fault_falls_back_to_the_on_duty_manager_when_the_department_has_no_leader(level):
    team, leader, managers, manager = shipped()
    f.rotation(managers, [manager], start_date=dt.date(2026, 1, 1))

    person, why = selectors.choose_commander(level=level, business=f.business(), at=NOW)

    assert person == manager
    assert why["chosen"]["position"] == 2
    assert why["fallbacks"] == ["1. A team's leader: Stability department — Stability department has no leader"]


def test_a_severe_fault_has_no_commander_when_no_candidate_has_anyone():
    shipped()

    person, why = selectors.choose_commander(level=1, business=f.business(), at=NOW)

    assert person is None
    assert why["chosen"] is None
    assert why["fallbacks"][1] == (
        "2. Whoever is on call on a schedule: On-duty managers — nobody is on call on On-duty managers"
    )


def test_the_on_duty_manager_is_whoever_is_on_call_at_the_declaration_time():
    team, leader, managers, manager = shipped()
    second = f.person("Second manager")
    f.rotation(managers, [manager, second], start_date=dt.date(2026, 6, 1), hand_off_time=dt.time(9, 0))

    assert selectors.choose_commander(level=2, business=None, at=at("Asia/Shanghai", 2026, 6, 2, 8, 59)).person == manager
    assert selectors.choose_commander(level=2, business=None, at=at("Asia/Shanghai", 2026, 6, 2, 9)).person == second


@pytest.mark.parametrize("level", [3, 4])
def test_a_minor_fault_is_commanded_by_the_business_technical_team_leader(level):
    tech, stability = f.people("Tech lead", "Stability contact")
    business = f.business(technical_leader=tech, stability_contact=stability)

    person, why = selectors.choose_commander(level=level, business=business, at=NOW)

    assert person == tech
    assert why["chosen"] == {"position": 1, "candidate": "The affected business's technical team leader"}


@pytest.mark.parametrize("level", [3, 4])
def test_a_minor_fault_falls_back_to_the_stability_contact(level):
    stability = f.person("Stability contact")
    business = f.business(name="Orders", stability_contact=stability)

    person, why = selectors.choose_commander(level=level, business=business, at=NOW)

    assert person == stability
    assert why["fallbacks"] == ["1. The affected business's technical team leader — Orders has no technical team leader"]


def test_a_rule_may_name_a_person_directly():
    named = f.person("Named")
    f.commander_rule(1, {"kind": CandidateKind.PERSON, "person": named})

    assert selectors.choose_commander(level=1, business=None, at=NOW).person == named


def test_a_level_without_a_rule_has_no_commander_and_says_so():
    CommanderRule.objects.filter(level=4).delete()

    person, why = selectors.choose_commander(level=4, business=f.business(), at=NOW)

    assert person is None
    assert why["fallbacks"] == ["no commander rule for P4"]

"""fault_declare chooses the commander and the fault handler from the roster when not given."""

import datetime as dt

import pytest

from incidents import services
from incidents.models import RoleAssignment
from roster.models import Schedule, Team
from roster.tests import factories as f

pytestmark = pytest.mark.django_db
Role = RoleAssignment.Role


def declare(business, level, **kw):
    return services.fault_declare(title="Checkout fails", level=level, affected_business=business, **kw)


def roles_of(fault):
    return {a.role: a.person for a in fault.roles.filter(ended_at__isnull=True)}


def declared_event(fault):
    return fault.timeline.get(kind="fault.declared").data


@pytest.fixture
def roster(clock):
    """A filled-in roster around the shipped rules; the clock stands on 1 June 2026, 12:00 Shanghai."""
    clock.freeze(f.at("Asia/Shanghai", 2026, 6, 1, 12))
    leader, manager, handler, tech, stability = f.people("Leader", "Manager", "Handler", "Tech", "Stability")
    Team.objects.filter(slug="stability-department").update(leader=leader)
    f.rotation(Schedule.objects.get(slug="on-duty-managers"), [manager], start_date=dt.date(2026, 1, 1))
    f.rotation(Schedule.objects.get(purpose=Schedule.Purpose.FAULT_HANDLER), [handler], start_date=dt.date(2026, 1, 1))
    business = f.business(name="Payments", technical_leader=tech, stability_contact=stability)
    return {"leader": leader, "manager": manager, "handler": handler, "tech": tech, "stability": stability,
            "business": business}


@pytest.mark.parametrize("level, commander", [(1, "leader"), (2, "leader"), (3, "tech"), (4, "tech")])
def test_declaring_a_fault_chooses_the_commander_by_level_and_the_fault_handler_on_duty(roster, level, commander):
    fault = declare(roster["business"], level)

    assert roles_of(fault) == {Role.COMMANDER: roster[commander], Role.FAULT_HANDLER: roster["handler"]}


def test_the_declared_event_says_which_rule_and_candidate_chose_each_role(roster):
    fault = declare(roster["business"], 1)

    data = declared_event(fault)
    commander, handler = data["roles"]
    assert commander["role"] == Role.COMMANDER
    assert commander["person"] == {"id": roster["leader"].pk, "name": "Leader"}
    assert commander["selection"] == {
        "rule": "P1",
        "chosen": {"position": 1, "candidate": "A team's leader: Stability department"},
        "fallbacks": [],
    }
    assert handler["role"] == Role.FAULT_HANDLER
    assert handler["selection"]["chosen"]["schedule"]["name"] == "Fault handler on duty"
    assert data["unfilled_roles"] == []
    assert fault.timeline.count() == 1


def test_a_p2_fault_falls_back_to_the_on_duty_manager_and_records_the_fallback(roster):
    Team.objects.filter(slug="stability-department").update(leader=None)

    fault = declare(roster["business"], 2)

    assert roles_of(fault)[Role.COMMANDER] == roster["manager"]
    selection = declared_event(fault)["roles"][0]["selection"]
    assert selection["chosen"]["position"] == 2
    assert selection["fallbacks"] == ["1. A team's leader: Stability department — Stability department has no leader"]


def test_a_p3_fault_falls_back_to_the_stability_contact(roster):
    business = roster["business"]
    business.technical_leader = None
    business.save()

    fault = declare(business, 3)

    assert roles_of(fault)[Role.COMMANDER] == roster["stability"]
    assert declared_event(fault)["roles"][0]["selection"]["fallbacks"] == [
        "1. The affected business's technical team leader — Payments has no technical team leader"
    ]


def test_a_p4_fault_with_nobody_to_command_is_declared_and_says_why(roster):
    business = f.business(name="Orphan")

    fault = declare(business, 4)

    assert Role.COMMANDER not in roles_of(fault)
    unfilled = declared_event(fault)["unfilled_roles"]
    assert [u["role"] for u in unfilled] == [Role.COMMANDER]
    assert unfilled[0]["selection"]["fallbacks"] == [
        "1. The affected business's technical team leader — Orphan has no technical team leader",
        "2. The affected business's stability contact — Orphan has no stability contact",
    ]


def test_people_given_by_the_declarer_are_kept_and_marked_as_given(roster):
    chosen_commander, chosen_handler = f.people("Chosen commander", "Chosen handler")

    fault = declare(roster["business"], 1, commander=chosen_commander, fault_handler=chosen_handler)

    assert roles_of(fault) == {Role.COMMANDER: chosen_commander, Role.FAULT_HANDLER: chosen_handler}
    assert [r["selection"] for r in declared_event(fault)["roles"]] == [{"given": True}, {"given": True}]


def test_the_fault_handler_is_whoever_is_on_duty_at_the_declaration_instant(roster, clock):
    schedule = Schedule.objects.get(purpose=Schedule.Purpose.FAULT_HANDLER)
    night = f.person("Night handler")
    f.override(schedule, night, f.at("Asia/Shanghai", 2026, 6, 1, 20), f.at("Asia/Shanghai", 2026, 6, 2, 8))

    clock.freeze(f.at("Asia/Shanghai", 2026, 6, 1, 20))
    fault = declare(roster["business"], 3)

    assert roles_of(fault)[Role.FAULT_HANDLER] == night

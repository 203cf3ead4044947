"""The demo data set (`make run`) uses the whole roster, on top of the shipped rules."""

import io

import pytest
from django.core.management import call_command

from roster import selectors
from roster.models import Business, EscalationStep, Override, Rotation, RotationMember, Schedule, Team

from .factories import at

pytestmark = pytest.mark.django_db
ROWS = [Team, Schedule, Rotation, RotationMember, Override, EscalationStep, Business]


@pytest.fixture
def demo(settings, tmp_path, clock):
    settings.DATA_DIR = tmp_path
    clock.freeze(at("Asia/Shanghai", 2026, 11, 26, 15))  # a Thursday afternoon
    call_command("load_demo", stdout=io.StringIO())


def test_the_demo_chooses_a_commander_for_every_level_and_a_fault_handler(demo):
    orders = Business.objects.get(slug="orders")

    commanders = {level: selectors.choose_commander(level=level, business=orders).person.name for level in (1, 2, 3, 4)}

    assert commanders == {1: "Zhang Wei 张伟", 2: "Zhang Wei 张伟", 3: "Liu Yang 刘洋", 4: "Liu Yang 刘洋"}
    assert selectors.fault_handler_on_duty().person is not None
    assert selectors.emergency_contacts(business=orders)
    assert [p.people != [] for p in selectors.escalation_steps(business=orders)] == [True, True, True]


def test_the_demo_uses_layers_an_override_and_notification_groups(demo):
    handlers = Schedule.objects.get(purpose=Schedule.Purpose.FAULT_HANDLER)
    assert sorted(handlers.rotations.values_list("layer", flat=True)) == [1, 2]
    assert handlers.overrides.count() == 1
    assert selectors.notification_groups(business=Business.objects.get(slug="payments"))


def test_loading_the_demo_again_changes_nothing(demo):
    before = {model: list(model.objects.order_by("pk").values()) for model in ROWS}

    call_command("load_demo", stdout=io.StringIO())

    assert {model: list(model.objects.order_by("pk").values()) for model in ROWS} == before


def test_most_of_the_demo_team_gets_its_messages_in_chinese(demo):
    from roster.models import Person

    call_command("load_demo", stdout=io.StringIO())  # again: still one row each, same language

    languages = dict(Person.objects.values_list("name", "language"))
    assert len(languages) == Person.objects.count() == 9
    assert [name for name, language in languages.items() if language != "zh-hans"] == ["Liu Yang 刘洋"]
    assert languages["Liu Yang 刘洋"] == "en"

"""The roster admin, driven as an admin would: pages render, bad input gets a clear message."""

import datetime as dt

import pytest
from django.urls import reverse

from roster import selectors
from roster.models import (
    CandidateKind,
    CommanderRule,
    EscalationPolicy,
    NotificationGroup,
    Override,
    Rotation,
    Schedule,
)

from . import factories as f
from .factories import at

pytestmark = pytest.mark.django_db


def management(prefix, total=0, initial=0):
    return {
        f"{prefix}-TOTAL_FORMS": str(total),
        f"{prefix}-INITIAL_FORMS": str(initial),
        f"{prefix}-MIN_NUM_FORMS": "0",
        f"{prefix}-MAX_NUM_FORMS": "1000",
    }


def rejected(response, message):
    assert response.status_code == 200, "a rejected form renders again instead of redirecting"
    assert message in response.content.decode()


@pytest.fixture
def rows():
    person = f.person("Anna")
    schedule = f.schedule(name="Primary")
    rotation = f.rotation(schedule, [person])
    override = f.override(schedule, person, at("Asia/Shanghai", 2026, 6, 1, 9), at("Asia/Shanghai", 2026, 6, 1, 18))
    policy = f.escalation_policy((0, {"kind": CandidateKind.PERSON, "person": person}))
    group = NotificationGroup.objects.create(name="Ops group", open_conversation_id="cid==")
    business = f.business(emergency_schedule=schedule, escalation_policy=policy)
    business.notification_groups.add(group)
    return {
        "person": person, "team": f.team(leader=person), "schedule": schedule, "rotation": rotation,
        "override": override, "commanderrule": CommanderRule.objects.get(level=1), "escalationpolicy": policy,
        "notificationgroup": group, "business": business,
    }


MODELS = ["person", "team", "schedule", "rotation", "override", "commanderrule", "escalationpolicy",
          "notificationgroup", "business"]


@pytest.mark.parametrize("model", MODELS)
def test_each_add_change_and_list_page_renders_for_a_superuser(admin_client, rows, model):
    assert admin_client.get(reverse(f"admin:roster_{model}_add")).status_code == 200
    assert admin_client.get(reverse(f"admin:roster_{model}_change", args=[rows[model].pk])).status_code == 200
    assert admin_client.get(reverse(f"admin:roster_{model}_changelist"), {"q": "a"}).status_code == 200


def test_the_schedule_page_shows_who_is_on_call_now_and_the_next_seven_days(admin_client, clock):
    clock.freeze(at("Asia/Shanghai", 2026, 6, 3, 12))
    anna, ben = f.people("Anna", "Ben")
    schedule = f.schedule(name="Primary")
    f.rotation(schedule, [anna, ben], start_date=dt.date(2026, 6, 1), hand_off_time=dt.time(9, 0))

    page = admin_client.get(reverse("admin:roster_schedule_change", args=[schedule.pk])).content.decode()

    assert "<strong>On call now:</strong>\n    Anna" in page
    assert "Thu 4 Jun 09:00" in page and "Wed 10 Jun 09:00" in page


def rotation_form(schedule, **extra):
    return {
        "schedule": schedule.pk, "name": "Weekends", "layer": "2", "shift_length": "1", "shift_unit": "weeks",
        "start_date": "2026-06-06", "hand_off_time": "09:00", "active_weekdays": ["5", "6"], **extra,
    }


def test_a_rotation_without_members_is_rejected_with_a_message(admin_client):
    schedule = f.schedule()

    response = admin_client.post(
        reverse("admin:roster_rotation_add"), {**rotation_form(schedule), **management("rotation_members")}
    )

    rejected(response, "A rotation needs at least one member")
    assert not Rotation.objects.exists()


def test_a_rotation_with_members_is_saved_with_its_turns_in_order(admin_client):
    schedule = f.schedule()
    anna, ben = f.people("Anna", "Ben")

    response = admin_client.post(
        reverse("admin:roster_rotation_add"),
        {
            **rotation_form(schedule),
            **management("rotation_members", total=2),
            "rotation_members-0-position": "2", "rotation_members-0-person": anna.pk,
            "rotation_members-1-position": "1", "rotation_members-1-person": ben.pk,
        },
    )

    assert response.status_code == 302
    rotation = Rotation.objects.get()
    assert [m.person for m in rotation.rotation_members.all()] == [ben, anna]
    assert rotation.active_weekdays == [5, 6]


def test_a_rotation_active_on_no_day_is_rejected_with_a_message(admin_client):
    schedule = f.schedule()
    anna = f.person("Anna")
    data = {**rotation_form(schedule), **management("rotation_members", total=1),
            "rotation_members-0-position": "1", "rotation_members-0-person": anna.pk}
    del data["active_weekdays"]

    rejected(admin_client.post(reverse("admin:roster_rotation_add"), data), "Choose at least one day of the week.")


def schedule_form(**extra):
    return {"name": "Night shift", "slug": "night-shift", "time_zone": "Europe/Berlin", "purpose": "",
            "description": "", **management("rotations"), **management("overrides"), **extra}


def test_an_unknown_time_zone_is_rejected_with_a_message(admin_client):
    response = admin_client.post(reverse("admin:roster_schedule_add"), schedule_form(time_zone="Europe/Atlantis"))

    rejected(response, "Europe/Atlantis is not a known time zone")
    assert not Schedule.objects.filter(slug="night-shift").exists()


def test_an_override_that_ends_before_it_starts_is_rejected_with_a_message(admin_client):
    schedule, anna = f.schedule(name="Night shift"), f.person("Anna")
    url = reverse("admin:roster_schedule_change", args=[schedule.pk])
    data = {**schedule_form(slug=schedule.slug), **management("overrides", total=1),
            "overrides-0-person": anna.pk, "overrides-0-start_0": "2026-06-02", "overrides-0-start_1": "18:00",
            "overrides-0-end_0": "2026-06-02", "overrides-0-end_1": "09:00", "overrides-0-reason": "swap"}

    rejected(admin_client.post(url, data), "The override ends before it starts")
    assert not Override.objects.exists()


def test_saving_an_override_in_admin_changes_who_is_on_call_now(admin_client, clock):
    clock.freeze(at("Europe/Berlin", 2026, 6, 2, 12))
    anna, cover = f.people("Anna", "Cover")
    schedule = f.schedule(name="Night shift", time_zone="Europe/Berlin")
    url = reverse("admin:roster_schedule_change", args=[schedule.pk])
    assert selectors.on_call(schedule=schedule) == []

    # The rotation is added on its own page, as the schedule page's "Add a layer" link does.
    admin_client.post(
        reverse("admin:roster_rotation_add") + f"?schedule={schedule.pk}",
        {**rotation_form(schedule, active_weekdays=[str(d) for d in range(7)], start_date="2026-06-01"),
         **management("rotation_members", total=1), "rotation_members-0-position": "1",
         "rotation_members-0-person": anna.pk},
    )
    assert selectors.on_call(schedule=schedule) == [anna]

    rotation = schedule.rotations.get()
    response = admin_client.post(
        url,
        {**schedule_form(name="Night shift", slug=schedule.slug, time_zone="Europe/Berlin"),
         **management("rotations", total=1, initial=1), "rotations-0-id": rotation.pk,
         "rotations-0-schedule": schedule.pk, **management("overrides", total=1),
         "overrides-0-person": cover.pk, "overrides-0-start_0": "2026-06-02", "overrides-0-start_1": "10:00",
         "overrides-0-end_0": "2026-06-02", "overrides-0-end_1": "14:00", "overrides-0-reason": "Anna at the dentist"},
    )

    assert response.status_code == 302
    assert selectors.on_call(schedule=schedule) == [cover]
    page = admin_client.get(url).content.decode()
    assert "<strong>On call now:</strong>\n    Cover" in page


def test_an_escalation_step_without_a_target_is_rejected_with_a_message(admin_client):
    data = {"name": "Payments", "repeat_last_step_every": "10", "repeat_limit": "3", **management("steps", total=1),
            "steps-0-after_minutes": "5", "steps-0-position": "1", "steps-0-kind": CandidateKind.SCHEDULE}

    rejected(admin_client.post(reverse("admin:roster_escalationpolicy_add"), data),
             "Choose the schedule: “Whoever is on call on a schedule” needs one.")
    assert not EscalationPolicy.objects.filter(name="Payments").exists()


def test_a_commander_candidate_without_a_target_is_rejected_with_a_message(admin_client):
    rule = CommanderRule.objects.get(level=3)
    candidates = list(rule.candidates.all())
    data = {"level": "3", "note": rule.note, **management("candidates", total=3, initial=2)}
    for i, c in enumerate(candidates):
        data.update({f"candidates-{i}-id": c.pk, f"candidates-{i}-rule": rule.pk,
                     f"candidates-{i}-position": c.position, f"candidates-{i}-kind": c.kind})
    data.update({"candidates-2-position": "3", "candidates-2-kind": CandidateKind.PERSON})

    rejected(admin_client.post(reverse("admin:roster_commanderrule_change", args=[rule.pk]), data),
             "Choose the person: “A named person” needs one.")
    assert rule.candidates.count() == 2


def test_a_dingtalk_group_without_its_conversation_id_is_rejected_with_a_message(admin_client):
    data = {"name": "Ops", "kind": NotificationGroup.Kind.DINGTALK_CONVERSATION, "open_conversation_id": ""}

    rejected(admin_client.post(reverse("admin:roster_notificationgroup_add"), data), "Give the group")


def test_the_business_page_shows_its_emergency_contacts_on_call(admin_client):
    anna = f.person("Anna")
    schedule = f.schedule(name="Payments primary")
    f.rotation(schedule, [anna])
    business = f.business(name="Payments", emergency_schedule=schedule)

    page = admin_client.get(reverse("admin:roster_business_change", args=[business.pk])).content.decode()

    assert "<strong>On call now:</strong>\n    Anna" in page
    assert "Payments primary" in page

import datetime as dt

import pytest

from roster import selectors
from roster.models import NotificationGroup

from . import factories as f
from .factories import at

pytestmark = pytest.mark.django_db
NOW = at("Asia/Shanghai", 2026, 6, 1, 12)


def test_the_emergency_contacts_are_whoever_is_on_call_on_the_business_schedule():
    on_call, stability = f.people("On call", "Stability")
    schedule = f.schedule()
    f.rotation(schedule, [on_call], start_date=dt.date(2026, 1, 1))
    business = f.business(emergency_schedule=schedule, stability_contact=stability)

    assert selectors.emergency_contacts(business=business, at=NOW) == [on_call]


def test_the_stability_contact_stands_in_when_nobody_is_on_call():
    stability, tech = f.people("Stability", "Tech")
    business = f.business(emergency_schedule=f.schedule(), stability_contact=stability, technical_leader=tech)

    assert selectors.emergency_contacts(business=business, at=NOW) == [stability]


def test_the_technical_leader_stands_in_when_there_is_no_stability_contact_either():
    tech = f.person("Tech")
    business = f.business(technical_leader=tech)

    assert selectors.emergency_contacts(business=business, at=NOW) == [tech]
    assert selectors.emergency_contacts(business=f.business(), at=NOW) == []


def test_a_business_names_the_people_and_groups_who_receive_its_fault_notifications():
    reader, other = f.people("Reader", "Other")
    group = NotificationGroup.objects.create(name="Payments war room", open_conversation_id="cid123==")
    business = f.business()
    business.notification_recipients.add(reader)
    business.notification_groups.add(group)
    f.business().notification_recipients.add(other)

    assert selectors.notification_recipients(business=business) == [reader]
    assert selectors.notification_groups(business=business) == [group]

"""The one-click conference: who may ask, what the API answers, and what the worker starts.

The worker part runs against the loopback DingTalk (see notifications/tests/conftest.py for
the outbound guard that fails a test on any request that would leave the machine).
"""

import pytest

from incidents import services
from incidents.models import RoleAssignment, TimelineEvent
from notifications.outbox.attempts import delivery_attempt
from notifications.models import Channel, Delivery
from notifications.tests.conftest import outbound_guard, providers  # noqa: F401  (fixtures)
from notifications.tests.conftest import fake  # noqa: F401

from . import factories
from .factories import Cast
from .test_api import client_for, url

pytestmark = pytest.mark.django_db

CONFERENCE = "/v1.0/conference/videoConferences"


@pytest.fixture
def cast():
    return Cast()


def ask(cast, who):
    user = None if who == "anonymous" else getattr(cast, who)
    return client_for(user).post(url(cast.fault, "conference/"))


@pytest.mark.parametrize("who", ["commander_user", "manager"])
def test_the_commander_or_a_manager_asks_for_a_conference_and_is_answered_202(cast, who):
    response = ask(cast, who)
    assert response.status_code == 202
    assert "the link will appear on the timeline" in response.json()["detail"]
    [event] = TimelineEvent.objects.filter(fault=cast.fault, kind="conference.requested")
    assert Delivery.objects.filter(fault=cast.fault, channel=Channel.DINGTALK_CONFERENCE, status="pending").count() == 1
    if who == "commander_user":
        assert event.data["requested_by"]["name"] == "Zhang Wei"


@pytest.mark.parametrize(
    "who, status, message",
    [
        ("handler_user", 403, "Only this fault's commander or a user with the manage permission may do this."),
        ("stakeholder", 403, "Only this fault's commander or a user with the manage permission may do this."),
        ("outsider", 403, "You may not see this fault."),
        ("anonymous", 401, "Authentication credentials were not provided."),
    ],
)
def test_everyone_else_is_refused_with_a_reason(cast, who, status, message):
    response = ask(cast, who)
    assert (response.status_code, response.json()["detail"]) == (status, message)
    assert not TimelineEvent.objects.filter(fault=cast.fault, kind="conference.requested").exists()


def test_a_fault_that_is_not_open_has_no_conference(cast):
    services.fault_mark_recovered(fault=cast.fault, actor=None)
    response = ask(cast, "commander_user")
    assert response.status_code == 409
    assert response.json()["detail"] == f"Fault #{cast.fault.pk} is recovered; cannot start a conference."


def test_the_conference_invites_the_checked_in_members_and_its_link_reaches_the_timeline_and_group(
    providers, clock, django_capture_on_commit_callbacks
):
    zhang = factories.person("Zhang Wei", factories.user("zhang", "incidents.view_fault"))
    li = factories.person("Li Lei")
    for n, person in enumerate([zhang, li], start=1):
        person.dingtalk_user_id, person.dingtalk_union_id = f"user{n}", f"union{n}"
        person.save()
    fault = factories.fault(commander=zhang, fault_handler=li)
    services.role_check_in(fault=fault, person=zhang)  # Li Lei has not checked in
    assert client_for(zhang.user).post(url(fault, "conference/")).status_code == 202

    # The worker: the group, the conference, then the link posted to the group.
    for _ in range(3):
        for d in Delivery.objects.filter(fault=fault, status="pending").order_by("pk"):
            with django_capture_on_commit_callbacks(execute=True):
                delivery_attempt(delivery_id=d.pk)

    [call] = providers.calls(CONFERENCE)
    assert call.json["userId"] == "union1" and call.json["inviteUserIds"] == []
    [started] = TimelineEvent.objects.filter(fault=fault, kind="conference.started")
    assert started.data["url"] == call.answer["externalLinkUrl"] and started.actor_label == "War Room"
    assert started.data["members"] == ["Zhang Wei"]
    link = Delivery.objects.get(fault=fault, idempotency_key=f"fault:{fault.pk}:sync:{started.seq}")
    assert link.channel == Channel.DINGTALK_GROUP_MESSAGE and call.answer["externalLinkUrl"] in link.body
    assert link.status == "delivered"


def test_once_more_members_check_in_they_are_all_invited(cast, providers, clock):
    for n, person in enumerate([cast.commander, cast.handler], start=1):
        person.dingtalk_user_id, person.dingtalk_union_id = f"user{n}", f"union{n}"
        person.save()
    for person in (cast.commander, cast.handler):
        services.role_check_in(fault=cast.fault, person=person)
    services.conference_request(fault=cast.fault, actor=None)
    d = Delivery.objects.get(fault=cast.fault, channel=Channel.DINGTALK_CONFERENCE)
    delivery_attempt(delivery_id=d.pk)
    [call] = providers.calls(CONFERENCE)
    assert {call.json["userId"], *call.json["inviteUserIds"]} == {"union1", "union2"}
    assert RoleAssignment.objects.filter(fault=cast.fault, checked_in_at__isnull=False).count() == 2

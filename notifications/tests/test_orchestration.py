"""From declaration to recovery against the loopback provider: the group, the card, dialling
until check-in, escalation, commander replacement, repeats, reminders and progress sync.

Workers and beat are played by calling what they call: `delivery_attempt` for every due
row (`work`), and `follow_ups_run` / `deliveries_sweep` for the scheduler's tick.
"""

import json

from datetime import timedelta

import pytest
from django.utils import timezone

from incidents import services as incidents
from incidents.models import RoleAssignment, Task, TimelineEvent
from notifications.outbox.attempts import delivery_attempt
from notifications.outbox.sweeper import deliveries_sweep
from notifications.response.scheduler import follow_ups_run
from notifications.models import Channel, CollaborationGroup, Delivery, Engagement
from roster.models import Business, CandidateKind, NotificationGroup
from roster.tests import factories as roster_factories

from . import factories
from .factories import M

pytestmark = pytest.mark.django_db

Status = Delivery.Status
Role = RoleAssignment.Role
CREATE = "/v1.0/im/sceneGroup/create"
MEMBER_ADD = "/v1.0/im/sceneGroup/member/add"
CARD = "/v1.0/card/instances/createAndDeliver"
GROUP_MESSAGE = "/v1.0/robot/groupMessages/send"
DING = "/v1.0/robot/ding/send"
CARD_URL = "/notifications/dingtalk/card-callback/"


@pytest.fixture
def act(django_capture_on_commit_callbacks):
    """Call a service and run its after-commit hooks, as a real commit would."""

    def call(service, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return service(**kwargs)

    return call


@pytest.fixture
def world(db):
    """Payments is down; Li Lei commands, Han Meimei handles, Wang Wu is Payments' contact."""
    p = factories.person
    w = type("World", (), {})()
    w.li = p("Li Lei")
    w.han = p("Han Meimei", methods=(M.ALIYUN_VOICE, M.ALIYUN_SMS))
    w.wang = p("Wang Wu", methods=(M.DINGTALK_DING_PHONE, M.ALIYUN_SMS))
    w.sun = p("Sun Qi")  # the commander rule's second candidate
    w.zhou = p("Zhou Ba", methods=(M.ALIYUN_SMS,))  # the escalation policy's step
    w.wu = p("Wu Jiu", methods=(M.ALIYUN_VOICE, M.ALIYUN_SMS))  # a notification recipient
    roster_factories.commander_rule(
        1, {"kind": CandidateKind.PERSON, "person": w.li}, {"kind": CandidateKind.PERSON, "person": w.sun}
    )
    policy = roster_factories.escalation_policy((10, {"kind": CandidateKind.PERSON, "person": w.zhou}))
    w.payments = Business.objects.create(name="Payments", slug="payments", stability_contact=w.wang, escalation_policy=policy)
    w.payments.notification_recipients.set([w.wu])
    w.groups = [
        NotificationGroup.objects.create(name="Payments war room", open_conversation_id="cidNotify=="),
        NotificationGroup.objects.create(
            name="Stability robot", kind=NotificationGroup.Kind.DINGTALK_ROBOT_WEBHOOK,
            webhook_url="https://oapi.dingtalk.com/robot/send?access_token=fake-robot-token",
            webhook_secret="fake-robot-secret",
        ),
    ]
    w.payments.notification_groups.set(w.groups)
    return w


def declare(world, act, **kwargs):
    return act(
        incidents.fault_declare, title="Checkout fails", level=1, impact="30% of payments fail",
        affected_business=world.payments, commander=world.li, fault_handler=world.han, **kwargs,
    )


def work(act):
    """The workers: attempt every due row until nothing more is due."""
    for _ in range(20):
        due = Delivery.objects.filter(status=Status.PENDING, next_attempt_at__lte=timezone.now()).values_list("pk", flat=True)
        results = [act(delivery_attempt, delivery_id=pk) for pk in list(due)]
        if not any(results):
            return


def tick(act):
    """One scheduler tick: the sweeper and the follow-ups, then the workers."""
    act(deliveries_sweep)
    act(follow_ups_run)
    work(act)


def events(fault, kind):
    return list(TimelineEvent.objects.filter(fault=fault, kind=kind).order_by("seq"))


def texts(fault, kind="delivery.outcome"):
    return [e.data.get("text") for e in events(fault, kind)]


def dings_to(fake, person):
    return [c for c in fake.calls(DING) if c.json["receiverUserIdList"] == [person.dingtalk_user_id]]


def voice_to(fake, person):
    return [c for c in fake.calls("SingleCallByTts") if person.phone.endswith(c.query["CalledNumber"])]


def sms_to(fake, person):
    return [c for c in fake.calls("SendSms") if person.phone.endswith(c.query["PhoneNumbers"])]


# --- the group and the card ----------------------------------------------------------------


def test_declaring_creates_one_group_with_everyone_pulled_in_then_posts_the_card(world, providers, clock, act):
    providers.fail(CREATE, "5xx")
    fault = declare(world, act)
    tick(act)  # the first create gets a 500 and is retried later, with the same uuid
    clock.advance(timedelta(minutes=2))
    tick(act)

    first, second = providers.calls(CREATE)
    assert first.status == 500 and second.status == 200
    assert first.json["uuid"] == second.json["uuid"] == CollaborationGroup.objects.get(fault=fault).uuid
    assert second.json["owner_user_id"] == world.li.dingtalk_user_id
    assert set(second.json["user_ids"].split(",")) == {world.han.dingtalk_user_id, world.wang.dingtalk_user_id}
    assert second.json["title"] == f"P1 #{fault.pk} Checkout fails"

    group = CollaborationGroup.objects.get(fault=fault)
    [card] = providers.calls(CARD)
    params = card.json["cardData"]["cardParamMap"]
    assert card.json["openSpaceId"] == f"dtv1.card//IM_GROUP.{group.open_conversation_id}"
    assert params["level"] == "P1" and params["impact"] == "30% of payments fail"
    assert params["url"].endswith(f"/faults/{fault.pk}/")
    assert "Collaboration group created with Li Lei, Han Meimei, Wang Wu" in texts(fault)
    # Wang Wu, the emergency contact, became an emergency handler so that he can check in.
    assert RoleAssignment.objects.filter(fault=fault, person=world.wang, role=Role.EMERGENCY_HANDLER).exists()


def test_a_create_that_timed_out_is_sent_again_with_the_same_uuid_and_makes_one_group(world, providers, clock, act):
    providers.fail(CREATE, "timeout")
    fault = declare(world, act)
    tick(act)
    clock.advance(timedelta(minutes=2))
    tick(act)

    calls = providers.calls(CREATE)
    assert len(calls) == 2 and calls[0].json["uuid"] == calls[1].json["uuid"]
    assert len(providers.dingtalk.groups) == 1
    assert CollaborationGroup.objects.get(fault=fault).open_conversation_id == calls[1].answer["open_conversation_id"]


def test_later_handlers_and_contacts_of_a_later_suspect_join_and_who_cannot_is_on_the_timeline(world, providers, clock, act):
    fault = declare(world, act)
    tick(act)
    zhao = factories.person("Zhao Liu")
    nobody = factories.person("Qian Er", dingtalk_user_id="")
    act(incidents.role_assign, fault=fault, person=zhao, role=Role.EMERGENCY_HANDLER)
    search = Business.objects.create(name="Search", slug="search", stability_contact=nobody)
    act(incidents.fault_suspect_add, fault=fault, business=search)
    tick(act)

    added = [c.json["user_ids"] for c in providers.calls(MEMBER_ADD)]
    assert added == [zhao.dingtalk_user_id]
    assert "Zhao Liu joined the group" in texts(fault)
    assert "Could not add Qian Er to the group: Qian Er has no DingTalk userId" in texts(fault)
    # Both are dialled until they check in, like everyone pulled in.
    assert voice_to(providers, nobody) and dings_to(providers, zhao)


# --- dialling until check-in ---------------------------------------------------------------


def test_everyone_pulled_in_is_dialled_by_his_first_paging_method(world, providers, clock, act):
    declare(world, act)
    tick(act)
    assert len(dings_to(providers, world.li)) == 1  # DING call first
    assert len(voice_to(providers, world.han)) == 1 and not sms_to(providers, world.han)  # voice first
    assert len(dings_to(providers, world.wang)) == 1
    assert providers.calls(DING)[0].json["remindType"] == 3


def test_a_failed_method_goes_on_with_the_next_one_in_order(world, providers, clock, act, settings):
    providers.fail("SingleCallByTts", "permanent")
    declare(world, act)
    tick(act)
    assert [c.status for c in voice_to(providers, world.han)] == [200]  # refused in the body
    assert len(sms_to(providers, world.han)) == 1


def test_a_card_click_checks_in_and_stops_that_persons_dialling(world, providers, clock, act, client):
    providers.fail(DING, "5xx")  # Li Lei's first DING will be retried…
    fault = declare(world, act)
    tick(act)
    card = Delivery.objects.get(fault=fault, channel=Channel.DINGTALK_CARD)
    body, headers = providers.card_click(card.provider_key, world.li.dingtalk_user_id, timestamp_ms=int(clock.now().timestamp() * 1000))
    from django.db import transaction  # noqa: F401  (the view commits through the service)

    response = client.post(CARD_URL, body, content_type="application/json", headers=headers)
    assert response.status_code == 200
    before = len(dings_to(providers, world.li))
    clock.advance(timedelta(minutes=30))
    tick(act)

    # …but he checked in from the card: no retry, no re-page, no breach for him.
    assert len(dings_to(providers, world.li)) == before
    engagement = Engagement.objects.get(fault=fault, person=world.li)
    assert engagement.ended_at is not None and engagement.end_reason == "checked in"
    assert not [e for e in events(fault, "sla.breached") if e.data["what"] == "check_in" and e.data["person"]["name"] == "Li Lei"]


def test_no_check_in_within_the_sla_repages_escalates_and_replaces_the_commander(world, providers, clock, act):
    fault = declare(world, act)
    tick(act)
    act(incidents.role_check_in, fault=fault, person=world.han)
    act(incidents.role_check_in, fault=fault, person=world.wang)
    clock.advance(timedelta(minutes=9))
    tick(act)
    assert len(dings_to(providers, world.li)) == 1 and not sms_to(providers, world.zhou)

    clock.advance(timedelta(minutes=1))  # 10 minutes: P1's check-in SLA
    tick(act)

    [breach] = events(fault, "sla.breached")
    assert breach.data["what"] == "check_in" and breach.data["person"]["name"] == "Li Lei"
    assert breach.data["text"] == "Li Lei (commander) has not checked in within 10 min: escalated to Zhou Ba; Sun Qi takes over as commander"
    assert len(sms_to(providers, world.zhou)) == 1  # the policy's step: Zhou Ba, after 10 minutes
    [assigned] = events(fault, "role.assigned")[-1:]
    assert assigned.actor_label == "War Room"
    assert assigned.data["person"]["name"] == "Sun Qi" and assigned.data["replaced"]["name"] == "Li Lei"
    assert len(dings_to(providers, world.sun)) == 1  # the new commander is dialled
    assert len(dings_to(providers, world.li)) == 1  # the old one is not dialled again


def test_someone_who_is_not_commander_is_paged_again_when_the_sla_passes(world, providers, clock, act):
    fault = declare(world, act)
    tick(act)
    act(incidents.role_check_in, fault=fault, person=world.li)
    act(incidents.role_check_in, fault=fault, person=world.wang)
    clock.advance(timedelta(minutes=10))
    tick(act)
    assert len(voice_to(providers, world.han)) == 2
    [breach] = events(fault, "sla.breached")
    assert breach.data["text"].startswith("Han Meimei (fault handler) has not checked in within 10 min: paged again")


# --- notifications until recovery ----------------------------------------------------------


def test_recipients_and_groups_hear_at_once_and_every_period_until_recovery(world, providers, clock, act):
    fault = declare(world, act)
    tick(act)
    assert len(sms_to(providers, world.wu)) == 1  # he prefers voice for pages, SMS for news
    notify = [c for c in providers.calls(GROUP_MESSAGE) if c.json["openConversationId"] == "cidNotify=="]
    assert len(notify) == 1 and "30% of payments fail" in json.loads(notify[0].json["msgParam"])["text"]
    assert len(providers.calls("robot/send")) == 1
    # The timeline names the group, never its webhook URL with the robot's token in it.
    assert "Robot message to Stability robot delivered" in texts(fault)
    assert not [t for t in texts(fault) if "access_token" in t]

    for _ in range(2):
        clock.advance(timedelta(minutes=30))
        tick(act)
    assert len(sms_to(providers, world.wu)) == 3 and len(providers.calls("robot/send")) == 3

    act(incidents.fault_mark_recovered, fault=fault)
    tick(act)
    assert len(sms_to(providers, world.wu)) == 4  # "recovered", once
    clock.advance(timedelta(hours=3))
    tick(act)
    assert len(sms_to(providers, world.wu)) == 4


def test_resolving_stops_every_repeat_page_and_pending_message_within_one_tick(world, providers, clock, act):
    providers.fail(DING, "5xx", times=10)
    fault = declare(world, act)
    tick(act)
    act(incidents.task_create, fault=fault, assignee=world.han, kind=Task.Kind.INVESTIGATE, title="Find the cause")
    pending = Delivery.objects.filter(fault=fault, status=Status.PENDING).count()
    assert pending > 0

    act(incidents.fault_mark_recovered, fault=fault)
    assert not Delivery.objects.filter(fault=fault, status=Status.PENDING, stop_on_resolve=True).exists()
    tick(act)  # the "recovered" messages go out
    seen = len(providers.calls())
    for _ in range(6):
        clock.advance(timedelta(minutes=30))
        tick(act)
    assert len(providers.calls()) == seen
    assert not Engagement.objects.filter(fault=fault, ended_at__isnull=True).exists()
    assert any(t.endswith("cancelled: the fault is recovered") for t in texts(fault))
    assert not events(fault, "sla.breached") and not events(fault, "sla.reminder")


# --- deadlines inside the response ---------------------------------------------------------


def test_an_unacknowledged_task_reminds_its_assignee_then_is_flagged_to_the_commander(world, providers, clock, act):
    fault = declare(world, act)
    tick(act)
    for person in (world.li, world.han, world.wang):
        act(incidents.role_check_in, fault=fault, person=person)
    task = act(incidents.task_create, fault=fault, assignee=world.han, kind=Task.Kind.RECOVER, title="Roll back")
    clock.advance(timedelta(minutes=5))
    act(incidents.status_update_post, fault=fault, body="Rolling back")  # keep the progress SLA quiet
    clock.advance(timedelta(minutes=10))
    tick(act)
    [reminder] = events(fault, "sla.reminder")
    assert reminder.data["text"] == "Task “Roll back” not acknowledged in time: Han Meimei reminded"
    assert len(sms_to(providers, world.han)) == 1  # a reminder writes; it does not ring

    clock.advance(timedelta(minutes=15))
    act(incidents.status_update_post, fault=fault, body="Still rolling back")
    tick(act)
    [breach] = events(fault, "sla.breached")
    assert breach.data["text"] == "Task “Roll back” still not acknowledged by Han Meimei: flagged to Li Lei"
    assert breach.data["task"] == task.pk


def test_a_task_whose_due_time_was_moved_is_reminded_again_when_it_passes(world, providers, clock, act):
    fault = declare(world, act)
    tick(act)
    for person in (world.li, world.han, world.wang):
        act(incidents.role_check_in, fault=fault, person=person)
    task = act(incidents.task_create, fault=fault, assignee=world.han, kind=Task.Kind.RECOVER, title="Roll back")
    clock.advance(timedelta(minutes=5))
    act(incidents.status_update_post, fault=fault, body="Rolling back")  # keep the progress SLA quiet
    clock.advance(timedelta(minutes=10))
    tick(act)
    assert len(events(fault, "sla.reminder")) == 1 and len(sms_to(providers, world.han)) == 1

    act(incidents.task_update, task=task, due_at=clock.now() + timedelta(minutes=10))
    clock.advance(timedelta(minutes=5))
    act(incidents.status_update_post, fault=fault, body="Still rolling back")
    clock.advance(timedelta(minutes=6))
    tick(act)
    assert len(events(fault, "sla.reminder")) == 2
    assert len(sms_to(providers, world.han)) == 2  # the second reminder went out, not only onto the timeline


def test_an_acknowledged_task_is_not_reminded(world, providers, clock, act):
    fault = declare(world, act)
    task = act(incidents.task_create, fault=fault, assignee=world.han, kind=Task.Kind.RECOVER, title="Roll back")
    act(incidents.task_update, task=task, status=Task.Status.ACKNOWLEDGED)
    act(incidents.status_update_post, fault=fault, body="Rolling back")
    clock.advance(timedelta(minutes=40))
    act(follow_ups_run)
    assert not events(fault, "sla.reminder")
    assert [e.data["what"] for e in events(fault, "sla.breached")] == ["progress_update"]


def test_an_overdue_progress_update_reminds_the_handler_and_the_commander(world, providers, clock, act):
    fault = declare(world, act)
    tick(act)
    for person in (world.li, world.han, world.wang):
        act(incidents.role_check_in, fault=fault, person=person)
    clock.advance(timedelta(minutes=10))
    act(incidents.status_update_post, fault=fault, body="Found it")
    clock.advance(timedelta(minutes=14))
    tick(act)
    assert not events(fault, "sla.breached")

    clock.advance(timedelta(minutes=1))  # 15 minutes since the last progress update
    tick(act)
    [breach] = events(fault, "sla.breached")
    assert breach.data["what"] == "progress_update"
    assert breach.data["text"] == "No progress update for 15 min: Han Meimei and Li Lei reminded"
    # A reminder writes (SMS, DING in the app, email); it does not ring.
    assert len(sms_to(providers, world.han)) == 1 and len(sms_to(providers, world.li)) == 1


# --- progress sync -------------------------------------------------------------------------


def test_each_change_is_posted_to_the_group_as_it_happens(world, providers, clock, act):
    fault = declare(world, act)
    tick(act)
    group = CollaborationGroup.objects.get(fault=fault)
    zhao = factories.person("Zhao Liu")

    def then(service, **kwargs):
        result = act(service, **kwargs)
        work(act)  # the worker picks each message up as it is queued
        return result

    then(incidents.fault_change_level, fault=fault, level=2, reason="fewer users than feared")
    then(incidents.role_assign, fault=fault, person=zhao, role=Role.EMERGENCY_HANDLER)
    task = then(incidents.task_create, fault=fault, assignee=zhao, kind=Task.Kind.INVESTIGATE, title="Read the logs")
    then(incidents.task_update, task=task, progress="Timeouts to the bank")
    plan = then(incidents.plan_propose, fault=fault, description="Switch to the backup bank", expected_impact=3)
    then(incidents.plan_approve, plan=plan)
    then(incidents.status_update_post, fault=fault, body="Switching banks")
    then(incidents.fault_mark_mitigated, fault=fault)
    then(incidents.fault_mark_recovered, fault=fault)

    posted = [
        json.loads(c.json["msgParam"])["text"]
        for c in providers.calls(GROUP_MESSAGE)
        if c.json["openConversationId"] == group.open_conversation_id
    ]
    lines = [text.split("\n\n")[1] for text in posted]
    assert lines == [
        "Wang Wu is now emergency handler",  # the business's emergency contact, so that he can check in
        "Level lowered from P1 to P2 — fewer users than feared",
        "Zhao Liu is now emergency handler",
        f"New task for Zhao Liu: Read the logs (due {task.due_at.isoformat()})",
        "Task “Read the logs” (Zhao Liu): now acknowledged; progress: Timeouts to the bank",
        "Mitigation plan approved: Switch to the backup bank (expected impact P3)",
        "Progress: Switching banks",
        "The fault is mitigated",
        "The fault is recovered",
    ]


def test_changes_before_the_group_exists_wait_for_it(world, providers, clock, act):
    providers.fail(CREATE, "5xx")
    fault = declare(world, act)
    work(act)
    act(incidents.status_update_post, fault=fault, body="Looking")
    work(act)
    assert not providers.calls(GROUP_MESSAGE + "x") and not [
        c for c in providers.calls(GROUP_MESSAGE) if c.json["openConversationId"] != "cidNotify=="
    ]
    clock.advance(timedelta(minutes=2))
    tick(act)
    group = CollaborationGroup.objects.get(fault=fault)
    assert [c for c in providers.calls(GROUP_MESSAGE) if c.json["openConversationId"] == group.open_conversation_id]


def test_a_fault_resolved_before_its_group_existed_gets_the_group_when_reopened(world, providers, clock, act):
    providers.fail(CREATE, "5xx")
    fault = declare(world, act)
    work(act)  # the create got a 500 and waits for its retry…
    act(incidents.fault_mark_recovered, fault=fault)  # …which resolving cancels
    tick(act)
    group = CollaborationGroup.objects.get(fault=fault)
    assert group.open_conversation_id == ""

    act(incidents.fault_reopen, fault=fault, reason="it came back")
    tick(act)
    act(incidents.status_update_post, fault=fault, body="Looking again")
    tick(act)

    group.refresh_from_db()
    first, again = providers.calls(CREATE)
    assert first.json["uuid"] == again.json["uuid"] == group.uuid and again.status == 200
    assert group.open_conversation_id == again.answer["open_conversation_id"]
    in_group = [c.json["msgParam"] for c in providers.calls(GROUP_MESSAGE) if c.json["openConversationId"] == group.open_conversation_id]
    assert any("Looking again" in m for m in in_group)
    assert providers.calls(CARD)


# --- the sandbox ----------------------------------------------------------------------------


def test_with_no_provider_the_sandbox_shows_the_group_the_card_and_the_calls(world, clock, act):
    fault = declare(world, act)
    tick(act)
    channels = list(fault.sandbox_messages.values_list("channel", flat=True))
    assert channels.count(Channel.DINGTALK_GROUP_CREATE) == 1
    assert channels.count(Channel.DINGTALK_CARD) == 1
    assert Channel.DINGTALK_DING_PHONE in channels and Channel.ALIYUN_VOICE in channels
    assert CollaborationGroup.objects.get(fault=fault).open_conversation_id.startswith("sandbox-")
    assert any(t.startswith("Collaboration group created with Li Lei") and t.endswith("(sandbox)") for t in texts(fault))


def test_a_second_recovery_after_reopening_is_announced_too(world, providers, clock, act):
    fault = declare(world, act)
    tick(act)
    act(incidents.fault_mark_recovered, fault=fault)
    tick(act)
    recovered = len(sms_to(providers, world.wu))
    act(incidents.fault_reopen, fault=fault, reason="it came back")
    tick(act)  # the repeat is due at once after reopening
    assert len(sms_to(providers, world.wu)) == recovered + 1

    clock.advance(timedelta(minutes=5))
    act(incidents.fault_mark_recovered, fault=fault)
    tick(act)
    assert len(sms_to(providers, world.wu)) == recovered + 2
    group_messages = [c.json["msgParam"] for c in providers.calls(GROUP_MESSAGE) if c.json["openConversationId"] == "cidNotify=="]
    assert sum(": recovered" in m for m in group_messages) == 2

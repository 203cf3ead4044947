"""A provider outage is outlasted, not given up on.

Messages keep retrying (capped backoff) until delivered or no longer needed; pages cycle
through a person's methods again; a provider failing for everyone is an outage on the
timeline; nobody is escalated or replaced for a silence it caused; and every row reaches
a final state. Workers and beat are played by calling what they call.
"""

from datetime import timedelta

import pytest
from django.db import OperationalError, connection

from incidents import services as incidents
from incidents.event_types import EventKind
from incidents.models import RoleAssignment, TimelineEvent
from notifications.models import Channel, CollaborationGroup, Delivery, ProviderState
from notifications.outbox.attempts import delivery_attempt
from notifications.outbox.receipts import sms_report_record
from notifications.outbox.rows import person_page

from .test_orchestration import act, declare, tick, world  # noqa: F401  (fixtures)

pytestmark = pytest.mark.django_db

Status = Delivery.Status
Role = RoleAssignment.Role
DING = "/v1.0/robot/ding/send"
CREATE = "/v1.0/im/sceneGroup/create"
GROUP_MESSAGE = "/v1.0/robot/groupMessages/send"


def kinds(fault, kind):
    return list(TimelineEvent.objects.filter(fault=fault, kind=kind).order_by("seq"))


def ride_out(clock, act, minutes: int, *, step=timedelta(seconds=30)):
    """Let time pass with the scheduler and the workers running, as beat and Celery would."""
    for _ in range(int(timedelta(minutes=minutes) / step)):
        clock.advance(step)
        tick(act)


def assert_every_row_is_final():
    """Nothing waits forever: every row is delivered, failed, cancelled, or sent with nothing to wait for."""
    waiting = Delivery.objects.exclude(status__in=Delivery.FINAL_STATUSES).exclude(
        status=Status.SENT, receipt_due_at__isnull=True
    )
    assert list(waiting.values_list("channel", "status", "last_error")) == []


def test_notifications_and_group_messages_outlast_a_long_outage(world, providers, clock, act, settings):
    settings.NOTIFY_BACKOFF_MAX = 60
    providers.outage("5xx")
    fault = declare(world, act)
    ride_out(clock, act, 6)  # twice as many attempts as a page gets on one method, and more
    wu_sms = Delivery.objects.get(fault=fault, person=world.wu, purpose=Delivery.Purpose.MESSAGE)
    assert wu_sms.status == Status.PENDING and wu_sms.attempts >= 1  # tried, failed, and held: not given up
    assert ProviderState.objects.get(transport="aliyun_sms").outage_since is not None

    providers.outage(None)
    ride_out(clock, act, 3)
    wu_sms.refresh_from_db()
    assert wu_sms.status == Status.SENT and [c.query["OutId"] for c in providers.accepted("SendSms") if world.wu.phone.endswith(c.query["PhoneNumbers"])] == [wu_sms.provider_key]
    group = CollaborationGroup.objects.get(fault=fault)
    assert group.is_ready and len(providers.accepted(CREATE)) == 1
    # The notification to the business's group went too, once.
    assert len([c for c in providers.accepted(GROUP_MESSAGE) if c.json["openConversationId"] == "cidNotify=="]) == 1
    act(incidents.fault_mark_recovered, fault=fault)
    ride_out(clock, act, 2)
    assert_every_row_is_final()


def test_a_page_that_ran_out_of_methods_in_an_outage_starts_over_at_the_first(world, providers, clock, act, settings):
    # Failures not yet recognised as an outage (which would hold the page instead).
    settings.NOTIFY_OUTAGE_AFTER = 10_000
    settings.NOTIFY_BACKOFF_MAX = 30
    providers.outage("5xx")
    fault = declare(world, act)
    ride_out(clock, act, 8)
    pages = Delivery.objects.filter(fault=fault, person=world.wang, purpose=Delivery.Purpose.PAGE)
    assert pages.filter(page_cycle__gte=1).exists(), list(pages.values_list("channel", "status", "page_cycle"))
    assert not any("no paging method left" in (e.data.get("text") or "") for e in kinds(fault, EventKind.DELIVERY_OUTCOME))

    providers.outage(None)
    ride_out(clock, act, 2)
    assert pages.filter(status__in=(Status.SENT, Status.DELIVERED)).exists()


def test_in_an_outage_messages_are_held_and_one_probe_at_a_time_tests_the_provider(world, providers, clock, act, settings):
    settings.NOTIFY_OUTAGE_AFTER = 3
    providers.outage("5xx", provider="dingtalk")
    fault = declare(world, act)
    ride_out(clock, act, 1)
    assert ProviderState.objects.get(transport="dingtalk").outage_since is not None
    tried = len(providers.outage_calls())
    ride_out(clock, act, 2, step=timedelta(seconds=settings.NOTIFY_OUTAGE_PROBE_EVERY))
    # Two minutes of held DingTalk messages cost one probe per period, not one request per message.
    probes = len(providers.outage_calls()) - tried
    assert 0 < probes <= 2 * 60 // settings.NOTIFY_OUTAGE_PROBE_EVERY + 1
    held = Delivery.objects.filter(fault=fault, transport="dingtalk", status=Status.PENDING)
    assert held.count() > 1 and not held.filter(unconfirmed=True).exists()


def test_a_provider_failing_for_everyone_is_an_outage_until_its_first_success(world, providers, clock, act, settings):
    settings.NOTIFY_OUTAGE_AFTER = 3
    providers.outage("5xx", provider="dingtalk")
    fault = declare(world, act)
    ride_out(clock, act, 2)
    state = ProviderState.objects.get(transport="dingtalk")
    assert state.outage_since is not None and state.failures >= 3
    [outage] = kinds(fault, EventKind.PROVIDER_OUTAGE)
    assert outage.data["transport"] == "dingtalk" and "failing for everyone" in outage.data["text"]
    # Alibaba Cloud answered all along: one provider's outage is not another's.
    assert not ProviderState.objects.filter(outage_since__isnull=False).exclude(transport="dingtalk").exists()

    providers.outage(None)
    ride_out(clock, act, 2)
    state.refresh_from_db()
    assert state.outage_since is None and state.failures == 0
    [back] = kinds(fault, EventKind.PROVIDER_RECOVERED)
    assert back.data["transport"] == "dingtalk" and back.seq > outage.seq


def test_nobody_is_escalated_or_replaced_for_a_silence_the_outage_caused(world, providers, clock, act, settings):
    settings.NOTIFY_OUTAGE_AFTER = 3
    providers.outage("5xx")
    fault = declare(world, act)
    ride_out(clock, act, 15)  # well past P1's 10-minute check-in SLA
    assert kinds(fault, EventKind.SLA_BREACHED) == [] or all(
        e.data.get("what") != "check_in" for e in kinds(fault, EventKind.SLA_BREACHED)
    )
    commander = RoleAssignment.objects.get(fault=fault, role=Role.COMMANDER, ended_at__isnull=True)
    assert commander.person == world.li

    # The outage ends: his time starts now, not when the unreachable pages were written.
    providers.outage(None)
    ride_out(clock, act, 1)
    assert not [e for e in kinds(fault, EventKind.SLA_BREACHED) if e.data.get("what") == "check_in"]
    # Once pages get through, the SLA runs from then: silence now is his own.
    ride_out(clock, act, 11)
    breaches = [e for e in kinds(fault, EventKind.SLA_BREACHED) if e.data.get("what") == "check_in"]
    assert any(e.data["person"]["id"] == world.li.pk and e.data["successor"] for e in breaches)


def test_a_recovered_message_for_a_group_never_created_does_not_wait_forever(world, providers, clock, act):
    fault = declare(world, act)  # nothing has been sent yet: the group does not exist
    act(incidents.fault_mark_recovered, fault=fault)
    act(incidents.fault_close, fault=fault)
    tick(act)
    assert not CollaborationGroup.objects.get(fault=fault).is_ready
    assert_every_row_is_final()


def test_a_group_creation_that_may_have_reached_dingtalk_is_settled_not_cancelled(world, providers, clock, act, settings):
    providers.fail(CREATE, "timeout")  # DingTalk makes the group; its answer never arrives
    fault = declare(world, act)
    create = Delivery.objects.get(fault=fault, channel=Channel.DINGTALK_GROUP_CREATE)
    act(delivery_attempt, delivery_id=create.pk)
    create.refresh_from_db()
    assert create.status == Status.PENDING and create.may_have_left

    act(incidents.fault_mark_recovered, fault=fault)
    create.refresh_from_db()
    assert create.status == Status.PENDING  # not cancelled blind
    ride_out(clock, act, 2)
    create.refresh_from_db()
    group = CollaborationGroup.objects.get(fault=fault)
    assert create.status == Status.DELIVERED and group.is_ready
    # One group at DingTalk (the same uuid twice), and the product knows it: "recovered" is posted in it.
    assert {c.json["uuid"] for c in providers.accepted(CREATE)} == {group.uuid}
    assert any(c.json["openConversationId"] == group.open_conversation_id for c in providers.accepted(GROUP_MESSAGE))
    assert_every_row_is_final()


def test_a_database_blip_after_the_provider_accepted_a_page_does_not_make_it_unconfirmed(world, providers, clock, act):
    fault = declare(world, act)
    page = act(
        person_page, fault=fault, person=world.sun, page_key=f"fault:{fault.pk}:test:{world.sun.pk}",
        subject="P1", body="Check in now.",
    )
    blips = []

    def drop_once(execute, sql, params, many, context):
        # The UPDATE that records the provider's answer: the connection drops under it once.
        if not blips and sql.startswith('UPDATE "notifications_delivery"') and '"provider_id"' in sql:
            blips.append(sql)
            raise OperationalError("server closed the connection unexpectedly")
        return execute(sql, params, many, context)

    with connection.execute_wrapper(drop_once):
        assert act(delivery_attempt, delivery_id=page.pk) == Status.SENT
    page.refresh_from_db()
    assert blips and page.status == Status.SENT and not page.unconfirmed
    # The page was not handed on to his next method, and the provider got it once.
    assert Delivery.objects.filter(page_key=page.page_key).count() == 1
    assert len([c for c in providers.accepted(DING) if c.json["receiverUserIdList"] == [world.sun.dingtalk_user_id]]) == 1


def test_an_ambiguous_custom_robot_message_is_not_sent_again(world, providers, clock, act):
    providers.fail("robot/send", "timeout")
    fault = declare(world, act)
    tick(act)
    robot = Delivery.objects.get(fault=fault, channel=Channel.DINGTALK_ROBOT)
    assert robot.status == Status.SENT and robot.unconfirmed
    ride_out(clock, act, 3)
    assert len(providers.calls("robot/send")) == 1


def test_a_fault_declared_during_an_outage_hears_of_it_on_its_timeline(world, providers, clock, act, settings):
    settings.NOTIFY_OUTAGE_AFTER = 3
    providers.outage("5xx")
    first = declare(world, act)
    ride_out(clock, act, 1)
    assert kinds(first, EventKind.PROVIDER_OUTAGE)
    later = act(
        incidents.fault_declare, title="Refunds fail", level=2, impact="Refunds fail",
        affected_business=world.payments, commander=world.sun,
    )
    tick(act)
    assert {e.data["transport"] for e in kinds(later, EventKind.PROVIDER_OUTAGE)} == {
        e.data["transport"] for e in kinds(first, EventKind.PROVIDER_OUTAGE)
    }
    tick(act)  # told once
    assert len(kinds(later, EventKind.PROVIDER_OUTAGE)) == len(kinds(first, EventKind.PROVIDER_OUTAGE))


def test_dingtalk_in_an_outage_is_probed_with_a_token_request_not_with_a_message(world, providers, clock, act, settings):
    settings.NOTIFY_OUTAGE_AFTER = 3
    providers.outage("hang", provider="dingtalk")
    fault = declare(world, act)
    ride_out(clock, act, 1)
    assert ProviderState.objects.get(transport="dingtalk").outage_since is not None
    sent_into_it = len(providers.outage_calls())
    ride_out(clock, act, 2, step=timedelta(seconds=settings.NOTIFY_OUTAGE_PROBE_EVERY))
    probes = providers.outage_calls()[sent_into_it:]
    assert probes and {c.api for c in probes} == {"/v1.0/oauth2/accessToken"}

    providers.outage(None)
    ride_out(clock, act, 2)
    assert ProviderState.objects.get(transport="dingtalk").outage_since is None
    assert CollaborationGroup.objects.get(fault=fault).is_ready


def _wu_sms(world, fault):
    return Delivery.objects.get(fault=fault, person=world.wu, purpose=Delivery.Purpose.MESSAGE)


def _sms_taken_for(providers, person):
    return [c.query["OutId"] for c in providers.accepted("SendSms") if person.phone.endswith(c.query["PhoneNumbers"])]


def test_a_notification_sms_the_provider_never_took_goes_again_when_no_receipt_comes(world, providers, clock, act, settings):
    settings.NOTIFY_RECEIPT_WAIT_SECONDS = 60
    settings.NOTIFY_OUTAGE_AFTER = 10_000  # not recognised as an outage: every message is sent
    providers.outage("hang", provider="aliyun")
    fault = declare(world, act)
    tick(act)
    sms = _wu_sms(world, fault)
    assert sms.status == Status.SENT and sms.unconfirmed  # timed out: not sent again blindly

    providers.outage(None)
    clock.advance(timedelta(seconds=61))
    tick(act)
    sms.refresh_from_db()
    assert sms.status == Status.SENT and not sms.unconfirmed
    assert _sms_taken_for(providers, world.wu) == [sms.provider_key]


def test_a_notification_sms_the_provider_took_is_settled_by_its_receipt_not_sent_again(world, providers, clock, act, settings):
    settings.NOTIFY_RECEIPT_WAIT_SECONDS = 60
    providers.fail("SendSms", "timeout")  # the provider takes it; its answer is lost
    fault = declare(world, act)
    tick(act)
    sms = _wu_sms(world, fault)
    assert sms.status == Status.SENT and sms.unconfirmed
    act(sms_report_record, item=providers.sms_report(sms.provider_key, world.wu.phone))
    clock.advance(timedelta(seconds=61))
    tick(act)
    sms.refresh_from_db()
    assert sms.status == Status.DELIVERED
    assert _sms_taken_for(providers, world.wu) == [sms.provider_key]

from datetime import timedelta

import pytest

from incidents import services as incident_services
from incidents.models import TimelineEvent
from notifications.outbox.attempts import backoff, delivery_attempt, delivery_attempt_failed, delivery_claim
from notifications.outbox.receipts import sms_report_record
from notifications.outbox.rows import deliveries_cancel, delivery_create, person_page
from notifications.outbox.sweeper import deliveries_sweep
from notifications.models import Channel, Delivery
from warroom.embedded_redis import free_port

from . import factories
from .factories import M

pytestmark = pytest.mark.django_db

DING = "/v1.0/robot/ding/send"
Status = Delivery.Status


def fault_alone(**kwargs):
    """A declared fault whose own follow-up rows (its group) are cancelled: these tests watch single pages."""
    fault = factories.fault(**kwargs)
    deliveries_cancel(fault=fault, reason="not under test")
    return fault


def page(person, fault=None):
    fault = fault or fault_alone(commander=person)
    return person_page(
        fault=fault, person=person, page_key=f"fault:{fault.pk}:check-in:{person.pk}",
        subject=f"P1 #{fault.pk}", body="You are commander of P1 #1 Checkout fails; check in now.",
    )


def outcomes(fault):
    return list(TimelineEvent.objects.filter(fault=fault, kind="delivery.outcome").values_list("data__text", flat=True))


def test_a_page_is_an_outbox_row_before_anything_is_sent(providers, clock):
    li = factories.person("Li Lei")
    d = page(li)
    assert d.status == Status.PENDING and d.channel == Channel.DINGTALK_DING_PHONE and d.transport == "dingtalk"
    assert providers.calls(DING) == []

    assert delivery_attempt(delivery_id=d.pk) == Status.SENT

    d.refresh_from_db()
    assert d.attempts == 1 and d.provider_id.startswith("ding") and d.lease_until is None
    assert providers.calls(DING)[0].json["receiverUserIdList"] == [li.dingtalk_user_id]
    assert outcomes(d.fault) == ["DING call to Li Lei sent"]


def test_asking_twice_with_one_key_queues_one_message(providers, clock):
    li = factories.person("Li Lei")
    first = page(li)
    again = page(li, first.fault)
    assert first.pk == again.pk and Delivery.objects.filter(page_key=first.page_key).count() == 1


def test_only_one_worker_claims_a_row(providers, clock):
    d = page(factories.person("Li Lei"))
    assert delivery_claim(delivery_id=d.pk) is not None
    assert delivery_claim(delivery_id=d.pk) is None
    assert delivery_attempt(delivery_id=d.pk) is None
    assert providers.calls(DING) == []


def test_a_transient_failure_is_retried_after_a_backoff_with_jitter_kept_in_the_database(providers, clock, settings):
    providers.fail(DING, "5xx")
    d = page(factories.person("Li Lei"))

    assert delivery_attempt(delivery_id=d.pk) == Status.PENDING
    d.refresh_from_db()
    base = settings.NOTIFY_BACKOFF_BASE
    assert clock.now() + timedelta(seconds=base * 0.5) <= d.next_attempt_at <= clock.now() + timedelta(seconds=base)
    assert "HTTP 500" in d.last_error

    # Not due yet: a task that arrives early does nothing.
    assert delivery_attempt(delivery_id=d.pk) is None
    clock.advance(timedelta(seconds=base))
    assert delivery_attempt(delivery_id=d.pk) == Status.SENT
    assert [c.status for c in providers.calls(DING)] == [500, 200]
    texts = outcomes(d.fault)
    assert texts[0].startswith("DING call to Li Lei failed (DingTalk could not send the DING: HTTP 500")
    assert "retrying in" in texts[0] and texts[1] == "DING call to Li Lei sent"


def test_backoff_grows_exponentially_up_to_the_cap(settings):
    settings.NOTIFY_BACKOFF_BASE, settings.NOTIFY_BACKOFF_MAX = 10, 60
    for attempt, ceiling in [(1, 10), (2, 20), (3, 40), (4, 60), (9, 60)]:
        delay = backoff(attempt).total_seconds()
        assert ceiling / 2 <= delay <= ceiling
    assert backoff(1, retry_after=60).total_seconds() == 60


def test_after_the_last_attempt_the_next_paging_method_is_used(providers, clock, settings):
    providers.fail(DING, "5xx", times=3)
    li = factories.person("Li Lei", methods=(M.DINGTALK_DING_PHONE, M.ALIYUN_VOICE))
    d = page(li)
    for _ in range(settings.NOTIFY_MAX_ATTEMPTS):
        delivery_attempt(delivery_id=d.pk)
        clock.advance(timedelta(seconds=settings.NOTIFY_BACKOFF_MAX))

    d.refresh_from_db()
    assert d.status == Status.FAILED and d.attempts == 3
    voice = Delivery.objects.get(page_key=d.page_key, method_index=1)
    assert voice.channel == Channel.ALIYUN_VOICE and voice.status == Status.PENDING
    assert delivery_attempt(delivery_id=voice.pk) == Status.SENT
    assert providers.calls("SingleCallByTts")[0].query["OutId"] == voice.provider_key
    texts = outcomes(d.fault)
    assert texts[-2].startswith("DING call to Li Lei failed after 3 attempts: ")
    assert texts[-1] == "Voice call to Li Lei sent"


def test_a_permanent_error_is_not_retried(providers, clock):
    providers.fail(DING, "quota")
    li = factories.person("Li Lei", methods=(M.DINGTALK_DING_PHONE, M.ALIYUN_SMS))
    d = page(li)

    assert delivery_attempt(delivery_id=d.pk) == Status.FAILED
    clock.advance(timedelta(hours=1))
    assert deliveries_sweep()["queued"] == 1  # the SMS row, not the DING
    assert len(providers.calls(DING)) == 1
    sms = Delivery.objects.get(page_key=d.page_key, method_index=1)
    assert sms.channel == Channel.ALIYUN_SMS
    assert outcomes(d.fault)[0].startswith("DING call to Li Lei failed: DingTalk could not send the DING: HTTP 400 ding.serverquota.insufficient")


def test_a_person_without_the_contact_detail_is_paged_by_the_next_method(providers, clock):
    han = factories.person("Han Meimei", methods=(M.DINGTALK_DING_PHONE, M.EMAIL), dingtalk_user_id="")
    d = page(han)
    assert d.channel == Channel.EMAIL and d.method_index == 1


def test_when_no_method_is_left_the_timeline_says_so(providers, clock):
    han = factories.person("Han Meimei", methods=(M.EMAIL,), email="")
    fault = fault_alone(commander=han)
    assert page(han, fault) is None
    assert outcomes(fault) == ["Could not page Han Meimei: no paging method left"]


def test_an_ambiguous_sms_is_not_sent_again_and_waits_for_its_receipt(providers, clock):
    providers.fail("SendSms", "timeout")
    li = factories.person("Li Lei", methods=(M.ALIYUN_SMS, M.ALIYUN_VOICE))
    d = page(li)

    assert delivery_attempt(delivery_id=d.pk) == Status.SENT
    d.refresh_from_db()
    assert d.unconfirmed and d.receipt_due_at is not None
    clock.advance(timedelta(seconds=60))
    deliveries_sweep()
    assert delivery_attempt(delivery_id=d.pk) is None
    assert len(providers.calls("SendSms")) == 1

    # The receipt settles it: the provider had sent it after all.
    assert sms_report_record(providers.sms_report(d.provider_key, li.phone))
    d.refresh_from_db()
    assert d.status == Status.DELIVERED
    assert outcomes(d.fault)[-1] == "SMS to Li Lei delivered"
    assert not Delivery.objects.filter(page_key=d.page_key, method_index=1).exists()


def test_an_ambiguous_sms_without_a_receipt_moves_on_to_the_next_method_not_the_same_one(providers, clock, settings):
    providers.fail("SendSms", "timeout")
    li = factories.person("Li Lei", methods=(M.ALIYUN_SMS, M.ALIYUN_VOICE))
    d = page(li)
    delivery_attempt(delivery_id=d.pk)

    clock.advance(timedelta(seconds=settings.NOTIFY_RECEIPT_WAIT_SECONDS))
    assert deliveries_sweep()["unconfirmed"] == 1
    d.refresh_from_db()
    assert d.status == Status.FAILED
    voice = Delivery.objects.get(page_key=d.page_key, method_index=1)
    delivery_attempt(delivery_id=voice.pk)
    assert len(providers.calls("SendSms")) == 1 and len(providers.calls("SingleCallByTts")) == 1


def test_an_ambiguous_ding_goes_straight_on_to_the_next_method(providers, clock):
    providers.fail(DING, "timeout")
    li = factories.person("Li Lei", methods=(M.DINGTALK_DING_PHONE, M.ALIYUN_VOICE))
    d = page(li)
    assert delivery_attempt(delivery_id=d.pk) == Status.SENT
    assert Delivery.objects.get(page_key=d.page_key, method_index=1).channel == Channel.ALIYUN_VOICE
    assert len(providers.calls(DING)) == 1
    assert "unconfirmed" in outcomes(d.fault)[0]


def test_an_ambiguous_card_is_sent_again_with_the_same_out_track_id(providers, clock, settings):
    providers.fail("/v1.0/card/instances/createAndDeliver", "timeout")
    fault = fault_alone()
    d = delivery_create(
        fault=fault, channel=Channel.DINGTALK_CARD, target="cidGroup1", idempotency_key=f"fault:{fault.pk}:card",
        payload={"params": {"level": "P1"}},
    )
    assert delivery_attempt(delivery_id=d.pk) == Status.PENDING
    clock.advance(timedelta(seconds=settings.NOTIFY_BACKOFF_BASE))
    assert delivery_attempt(delivery_id=d.pk) == Status.DELIVERED
    calls = providers.calls("/v1.0/card/instances/createAndDeliver")
    assert [c.json["outTrackId"] for c in calls] == [d.provider_key, d.provider_key]
    assert outcomes(fault)[-1] == "Check-in card to the group delivered"


def test_the_sweeper_reclaims_a_row_whose_worker_died_before_sending(providers, clock, settings):
    d = page(factories.person("Li Lei"))
    assert delivery_claim(delivery_id=d.pk) is not None  # then the worker is killed

    assert deliveries_sweep()["reclaimed"] == 0  # the lease still holds
    clock.advance(timedelta(seconds=settings.NOTIFY_LEASE_SECONDS + 1))
    assert deliveries_sweep()["reclaimed"] == 1
    d.refresh_from_db()
    assert d.status == Status.PENDING
    clock.advance(timedelta(seconds=settings.NOTIFY_BACKOFF_MAX))
    assert delivery_attempt(delivery_id=d.pk) == Status.SENT
    assert len(providers.calls(DING)) == 1


def test_a_row_whose_worker_died_while_sending_is_not_sent_again_on_a_keyless_channel(providers, clock, settings):
    li = factories.person("Li Lei", methods=(M.ALIYUN_SMS, M.ALIYUN_VOICE))
    d = page(li)
    delivery_claim(delivery_id=d.pk)
    Delivery.objects.filter(pk=d.pk).update(dispatched_at=clock.now())  # the request left, then kill -9

    clock.advance(timedelta(seconds=settings.NOTIFY_LEASE_SECONDS + 1))
    deliveries_sweep()
    d.refresh_from_db()
    assert d.status == Status.SENT and d.unconfirmed
    assert delivery_attempt(delivery_id=d.pk) is None


def test_a_row_dispatched_just_after_the_sweeper_listed_it_is_taken_as_ambiguous(providers, clock, settings):
    from django.db import connection

    li = factories.person("Li Lei", methods=(M.ALIYUN_SMS, M.ALIYUN_VOICE))
    d = page(li)
    delivery_claim(delivery_id=d.pk)
    clock.advance(timedelta(seconds=settings.NOTIFY_LEASE_SECONDS + 1))
    marked = []

    def slow_worker_dispatches(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        # Right after the sweeper listed the expired leases, the slow worker sends.
        if not marked and '"notifications_delivery"' in sql and "lease_until" in sql and sql.lstrip().startswith("SELECT"):
            marked.append(Delivery.objects.filter(pk=d.pk).update(dispatched_at=clock.now()))
        return result

    with connection.execute_wrapper(slow_worker_dispatches):
        deliveries_sweep()
    assert marked == [1]
    d.refresh_from_db()
    assert d.status == Status.SENT and d.unconfirmed  # not put back as if it had never left


def test_the_sweeper_requeues_a_due_row_whose_task_was_lost(providers, clock, settings):
    providers.fail(DING, "5xx")
    d = page(factories.person("Li Lei"))
    assert deliveries_sweep()["queued"] == 0  # just queued by its creator
    clock.advance(timedelta(seconds=31))
    assert deliveries_sweep()["queued"] == 1
    assert deliveries_sweep()["queued"] == 0  # not again within the grace

    # A retry further away than a broker countdown may wait is left to the sweeper.
    settings.NOTIFY_BACKOFF_BASE = settings.NOTIFY_BACKOFF_MAX = 600
    delivery_attempt(delivery_id=d.pk)
    d.refresh_from_db()
    assert d.queued_at is None and d.next_attempt_at >= clock.now() + timedelta(seconds=300)
    assert deliveries_sweep()["queued"] == 0
    clock.advance(timedelta(seconds=600))
    assert deliveries_sweep()["queued"] == 1


def test_resolving_the_fault_cancels_its_pending_rows(providers, clock, django_capture_on_commit_callbacks):
    li, han = factories.person("Li Lei"), factories.person("Han Meimei")
    fault = fault_alone(commander=li)
    first, second = page(li, fault), page(han, fault)
    recovered_message = delivery_create(
        fault=fault, channel=Channel.DINGTALK_GROUP_MESSAGE, target="cid1", idempotency_key="recovered",
        subject="Recovered", body="P1 recovered", stop_on_resolve=False,
    )

    with django_capture_on_commit_callbacks(execute=True):
        incident_services.fault_mark_recovered(fault=fault)

    ours = Delivery.objects.filter(pk__in=[first.pk, second.pk, recovered_message.pk])
    assert set(ours.filter(status=Status.CANCELLED).values_list("pk", flat=True)) == {first.pk, second.pk}
    assert outcomes(fault) == ["2 pending messages cancelled: the fault is recovered"]
    assert delivery_attempt(delivery_id=first.pk) is None
    assert delivery_attempt(delivery_id=recovered_message.pk) == Status.DELIVERED
    assert providers.calls(DING) == []


def test_a_row_that_became_pending_after_resolution_is_cancelled_by_the_next_sweep(providers, clock):
    li = factories.person("Li Lei")
    fault = fault_alone(commander=li)
    d = page(li, fault)
    delivery_claim(delivery_id=d.pk)  # a worker is sending while the fault recovers
    incident_services.fault_mark_recovered(fault=fault)
    Delivery.objects.filter(pk=d.pk).update(status=Status.PENDING, lease_until=None)  # its retry lands after

    assert deliveries_sweep()["cancelled"] == 1
    d.refresh_from_db()
    assert d.status == Status.CANCELLED


def test_a_worker_that_claims_a_row_of_a_resolved_fault_does_not_send_it(providers, clock):
    li = factories.person("Li Lei")
    fault = fault_alone(commander=li)
    d = page(li, fault)
    # A page created inside the resolution's transaction by another subscriber, say.
    from incidents.models import Fault

    Fault.objects.filter(pk=fault.pk).update(status=Fault.Status.RECOVERED)
    assert delivery_attempt(delivery_id=d.pk) == Status.CANCELLED
    assert providers.calls(DING) == []


def test_checking_in_stops_the_persons_pages(providers, clock, django_capture_on_commit_callbacks):
    li = factories.person("Li Lei", methods=(M.DINGTALK_DING_PHONE, M.ALIYUN_VOICE))
    fault = fault_alone(commander=li)
    d = page(li, fault)

    # The pages are cancelled in the check-in's transaction; the count is recorded after it commits.
    with django_capture_on_commit_callbacks(execute=True):
        incident_services.role_check_in(fault=fault, person=li)

    d.refresh_from_db()
    assert d.status == Status.CANCELLED
    assert outcomes(fault) == ["1 pending message to Li Lei cancelled: Li Lei checked in"]


def test_the_cancellation_on_the_timeline_names_the_person_in_its_data(providers, clock, django_capture_on_commit_callbacks):
    li = factories.person("Li Lei", methods=(M.DINGTALK_DING_PHONE, M.ALIYUN_VOICE))
    fault = fault_alone(commander=li)
    page(li, fault)
    with django_capture_on_commit_callbacks(execute=True):
        incident_services.role_check_in(fault=fault, person=li)

    [event] = TimelineEvent.objects.filter(fault=fault, kind="delivery.outcome", data__status="cancelled")
    assert event.data["count"] == 1
    assert event.data["person"] == {"id": li.pk, "name": "Li Lei"}
    assert event.data["reason"] == "Li Lei checked in"


def test_a_page_that_fails_after_check_in_does_not_go_on(providers, clock):
    providers.fail(DING, "quota")
    li = factories.person("Li Lei", methods=(M.DINGTALK_DING_PHONE, M.ALIYUN_VOICE))
    fault = fault_alone(commander=li)
    d = page(li, fault)
    lease = delivery_claim(delivery_id=d.pk)
    incident_services.role_check_in(fault=fault, person=li)
    from notifications.transports.base import TransportError

    delivery_attempt_failed(lease=lease, error=TransportError("quota", permanent=True))
    assert not Delivery.objects.filter(page_key=d.page_key, method_index=1).exists()


def test_the_sandbox_keeps_messages_when_no_provider_is_configured(clock):
    li = factories.person("Li Lei")
    d = page(li)
    assert d.transport == "sandbox"
    assert delivery_attempt(delivery_id=d.pk) == Status.DELIVERED
    message = d.sandbox_message
    assert message.recipient == "Li Lei" and message.address == li.dingtalk_user_id
    assert message.body.startswith("You are commander")
    assert outcomes(d.fault) == ["DING call to Li Lei delivered (sandbox)"]


def test_the_delivery_task_is_queued_only_when_the_row_commits(providers, clock, django_capture_on_commit_callbacks):
    li = factories.person("Li Lei")
    fault = fault_alone(commander=li)
    with django_capture_on_commit_callbacks() as queued:
        d = page(li, fault)
        page(li, fault)  # the same page again queues nothing more
    assert len(queued) == 1
    assert Delivery.objects.get(pk=d.pk).queued_at == clock.now()


def test_a_page_still_goes_out_while_the_token_cache_is_down(providers, clock, settings):
    # Redis restarting: the shared DingTalk token cache refuses connections. The request has
    # not left yet, so failing here would later be taken for an ambiguous send.
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": f"redis://127.0.0.1:{free_port()}/0"}
    }
    d = page(factories.person("Li Lei"))

    assert delivery_attempt(delivery_id=d.pk) == Status.SENT
    assert len(providers.calls(DING)) == 1 and len(providers.calls("/v1.0/oauth2/accessToken")) == 1


def test_a_group_message_whose_token_request_timed_out_is_retried_not_lost(providers, clock, monkeypatch):
    from django.core.cache import cache

    from notifications.transports import dingtalk

    from .test_transport_dingtalk import timeout_once

    cache.delete(dingtalk._token_key())
    timeout_once(monkeypatch, "/v1.0/oauth2/accessToken")
    d = delivery_create(
        fault=fault_alone(), channel=Channel.DINGTALK_GROUP_MESSAGE, target="cidGroup1",
        subject="P1 #1", body="Progress: rolling back", idempotency_key="group-message-after-token-timeout",
    )

    assert delivery_attempt(delivery_id=d.pk) == Status.PENDING
    d.refresh_from_db()
    assert not d.unconfirmed and "access token" in d.last_error
    assert providers.calls("/v1.0/robot/groupMessages/send") == []


def test_a_worker_whose_lease_expired_before_sending_does_not_send(providers, clock, settings):
    from django.db import connection

    d = page(factories.person("Li Lei"))
    stalled = []

    def stall_past_the_lease(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if not stalled and "incidents_roleassignment" in sql:
            # The worker has claimed the row and is checking the check-in; it stalls here (GC,
            # a lock wait, a paused VM) until the sweeper has reclaimed the row.
            stalled.append(sql)
            clock.advance(timedelta(seconds=settings.NOTIFY_LEASE_SECONDS + 1))
            assert deliveries_sweep()["reclaimed"] == 1
        return result

    with connection.execute_wrapper(stall_past_the_lease):
        assert delivery_attempt(delivery_id=d.pk) is None
    assert stalled and providers.calls(DING) == []

    clock.advance(timedelta(seconds=settings.NOTIFY_BACKOFF_MAX + 1))
    assert delivery_attempt(delivery_id=d.pk) == Status.SENT  # the worker the sweeper re-queued
    assert len(providers.calls(DING)) == 1

"""Pages, other messages and scheduling travel on separate Celery queues, and one send gets
a bounded time of HTTP in all, so that a slow provider never delays a deadline."""

import pytest
import redis
import requests.adapters
from django.conf import settings as django_settings

from notifications.models import Channel, Delivery
from notifications.outbox.attempts import delivery_attempt
from notifications.outbox.queue import enqueue, enqueue_follow_up, follow_up_started, queue_for
from notifications.outbox.rows import delivery_create
from notifications.transports import dingtalk
from notifications.transports.base import TransportError, send_budget
from warroom.celery import app as celery_app

from . import factories
from .test_orchestration import act, declare, world  # noqa: F401  (fixtures)

pytestmark = pytest.mark.django_db

DING = "/v1.0/robot/ding/send"


def queued(queue: str) -> int:
    """Messages waiting in `queue`, at every priority (kombu keeps one Redis list per step)."""
    client = redis.Redis.from_url(django_settings.REDIS_URL)
    return sum(client.llen(queue if step == 0 else f"{queue}\x06\x16{step}") for step in (0, 3, 6, 9))


def waiting_first(queue: str) -> int:
    return redis.Redis.from_url(django_settings.REDIS_URL).llen(queue)


def test_pages_and_what_gets_people_into_the_group_have_their_own_queue():
    assert queue_for(purpose=Delivery.Purpose.PAGE, channel=Channel.ALIYUN_VOICE) == "pages"
    for channel in (Channel.DINGTALK_GROUP_CREATE, Channel.DINGTALK_CARD, Channel.DINGTALK_GROUP_MEMBER_ADD):
        assert queue_for(purpose=Delivery.Purpose.MESSAGE, channel=channel) == "pages"
    assert queue_for(purpose=Delivery.Purpose.MESSAGE, channel=Channel.ALIYUN_SMS) == "messages"
    assert queue_for(purpose=Delivery.Purpose.MESSAGE, channel=Channel.DINGTALK_GROUP_MESSAGE) == "messages"


def test_each_task_lands_on_its_queue_in_the_broker():
    before = {q: queued(q) for q in ("pages", "messages", "scheduler")}
    enqueue(1, queue="pages")
    enqueue(2, queue="messages")
    follow_up_started(3)
    enqueue_follow_up(3)
    celery_app.send_task("notifications.tasks.sweep")  # as beat sends it: routed by name
    after = {q: queued(q) for q in ("pages", "messages", "scheduler")}
    assert {q: after[q] - before[q] for q in after} == {"pages": 1, "messages": 1, "scheduler": 2}


def test_one_send_gets_at_most_its_budget_whatever_the_read_timeout(providers, settings, monkeypatch):
    settings.NOTIFY_HTTP_READ_TIMEOUT = 30
    settings.NOTIFY_SEND_BUDGET = 2
    seen = []
    real_send = requests.adapters.HTTPAdapter.send

    def send(self, request, *args, **kwargs):
        seen.append((request.url, kwargs.get("timeout")))
        return real_send(self, request, *args, **kwargs)

    monkeypatch.setattr(requests.adapters.HTTPAdapter, "send", send)
    li = factories.person("Li Lei")
    fault = factories.fault(commander=li)
    d = delivery_create(fault=fault, channel=Channel.DINGTALK_DING_APP, person=li, body="Check in", idempotency_key="k1")
    assert delivery_attempt(delivery_id=d.pk) == Delivery.Status.SENT
    assert seen and all(timeout[1] <= 2 for _, timeout in seen), seen


def test_a_request_with_no_budget_left_is_not_sent_and_may_be_retried(providers):
    with send_budget(0):
        with pytest.raises(TransportError) as refused:
            dingtalk.ding_send(remind_type=dingtalk.REMIND_APP, user_ids=["user1"], content="Check in")
    assert not refused.value.ambiguous and not refused.value.permanent
    assert providers.calls(DING) == []


def test_a_fault_has_at_most_one_follow_up_waiting_in_the_queue():
    follow_up_started(7)
    before = queued("scheduler")
    for _ in range(10):  # ten contacts pulled in by one declaration
        enqueue_follow_up(7)
    assert queued("scheduler") - before == 1
    follow_up_started(7)  # the run begins: a later change needs a run of its own
    enqueue_follow_up(7)
    assert queued("scheduler") - before == 2


def test_a_declaration_queues_a_fixed_handful_of_tasks_one_follow_up_among_them(world, providers, act):
    before = {q: queued(q) for q in ("pages", "messages", "scheduler")}
    declare(world, act)
    after = {q: queued(q) for q in ("pages", "messages", "scheduler")}
    added = {q: after[q] - before[q] for q in after}
    # Three pages and the group on `pages`, three notifications on `messages`, one follow-up.
    assert added == {"pages": 4, "messages": 3, "scheduler": 1}


def test_each_faults_first_page_goes_ahead_of_every_later_page_and_message(world, providers, act):
    before = waiting_first("pages")
    declare(world, act)
    # One list served before the others: the fault's first page, and nothing else.
    assert waiting_first("pages") - before == 1

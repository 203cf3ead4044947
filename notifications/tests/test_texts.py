"""Messages that leave the product are worded in their reader's language: a person's in his
preferred language, a group's in NOTIFY_GROUP_LANGUAGE. Timeline records stay English data."""

import json
import re
from datetime import timedelta

import pytest

from incidents import services as incidents
from incidents.models import Task, TimelineEvent
from notifications import texts
from notifications.models import CollaborationGroup, Delivery

from .test_orchestration import CARD, GROUP_MESSAGE, act, declare, events, tick, world  # noqa: F401

pytestmark = pytest.mark.django_db

Purpose = Delivery.Purpose


def bodies(person, **filters):
    return list(Delivery.objects.filter(person=person, **filters).order_by("pk").values_list("body", flat=True))


def test_a_page_is_in_the_persons_language(world, providers, clock, act):
    for person in (world.li, world.wang):
        person.language = "zh-hans"
        person.save(update_fields=["language"])
    fault = declare(world, act)
    tick(act)

    [li_page] = bodies(world.li, purpose=Purpose.PAGE)
    assert li_page.startswith(f"您是 P1 #{fault.pk} Checkout fails 的指挥官。影响：30% of payments fail。请签到：")
    [han_page] = bodies(world.han, purpose=Purpose.PAGE)
    assert han_page.startswith(f"You are fault handler of P1 #{fault.pk} Checkout fails. Impact: 30% of payments fail.")
    [wang_page] = bodies(world.wang, purpose=Purpose.PAGE)
    assert wang_page.startswith(f"您是 P1 #{fault.pk} Checkout fails 的应急处理人。")

    clock.advance(timedelta(minutes=10))
    tick(act)  # nobody checked in: paged again (the commander is replaced instead)
    assert bodies(world.wang, purpose=Purpose.PAGE)[-1].startswith("提醒：您尚未签到。您是")
    assert bodies(world.han, purpose=Purpose.PAGE)[-1].startswith("Reminder: you have not checked in yet. You are")


def test_a_task_reminder_is_in_the_assignees_language(world, providers, clock, act):
    world.han.language = "zh-hans"
    world.han.save(update_fields=["language"])
    fault = declare(world, act)
    tick(act)
    for person in (world.li, world.han, world.wang):
        act(incidents.role_check_in, fault=fault, person=person)
    act(incidents.task_create, fault=fault, assignee=world.han, kind=Task.Kind.RECOVER, title="Roll back")
    act(incidents.task_create, fault=fault, assignee=world.li, kind=Task.Kind.RECOVER, title="Call the bank")
    clock.advance(timedelta(minutes=5))
    act(incidents.status_update_post, fault=fault, body="Rolling back")
    clock.advance(timedelta(minutes=10))
    tick(act)

    [han] = Delivery.objects.filter(person=world.han, subject__startswith="任务未响应")
    assert han.subject == "任务未响应：Roll back"
    assert han.body.startswith(f"您在 P1 #{fault.pk} Checkout fails 的任务“Roll back”等待您处理，请响应：")
    [li] = Delivery.objects.filter(person=world.li, subject__startswith="Task not acknowledged")
    assert li.body.startswith(f"Your task “Call the bank” on P1 #{fault.pk} Checkout fails is waiting for you.")
    # The timeline keeps its English record; the page renders it in the reader's language.
    assert {e.data["text"] for e in events(fault, "sla.reminder")} == {
        "Task “Roll back” not acknowledged in time: Han Meimei reminded",
        "Task “Call the bank” not acknowledged in time: Li Lei reminded",
    }


@pytest.mark.parametrize(
    "language, recovered, progress, status",
    [("en", ": recovered", "Progress: Rolling back", "Declared"), ("zh-hans", "：已恢复", "进展：Rolling back", "已宣告")],
)
def test_group_messages_are_in_the_group_language(world, providers, clock, act, settings, language, recovered, progress, status):
    settings.NOTIFY_GROUP_LANGUAGE = language
    world.wu.language = "en" if language == "zh-hans" else "zh-hans"  # a person keeps his own
    world.wu.save(update_fields=["language"])
    fault = declare(world, act)
    tick(act)
    act(incidents.status_update_post, fault=fault, body="Rolling back")
    tick(act)
    act(incidents.fault_mark_recovered, fault=fault)
    tick(act)

    group = CollaborationGroup.objects.get(fault=fault)
    in_group = [json.loads(c.json["msgParam"])["text"] for c in providers.calls(GROUP_MESSAGE) if c.json["openConversationId"] == group.open_conversation_id]
    assert any(progress in text for text in in_group)
    [card] = providers.calls(CARD)
    assert card.json["cardData"]["cardParamMap"]["status"] == status
    notify_group = [json.loads(c.json["msgParam"]) for c in providers.calls(GROUP_MESSAGE) if c.json["openConversationId"] == "cidNotify=="]
    assert recovered in notify_group[-1]["title"]
    [wu_recovered] = Delivery.objects.filter(person=world.wu, idempotency_key__contains=":notify:recovered:")
    assert (": recovered" in wu_recovered.subject) == (world.wu.language == "en")


# --- every progress line, in both languages -----------------------------------------------

PERSON = {"id": 1, "name": "李雷"}
SYNC_EVENTS = {
    "fault.level_changed": [{"from": 1, "to": 2, "raised": False, "reason": "影响变小"}, {"from": 2, "to": 1, "raised": True}],
    "role.assigned": [{"person": PERSON, "role": "commander"}, {"person": PERSON, "role": "fault_handler", "replaced": {"id": 2, "name": "韩梅梅"}}],
    "task.created": [{"assignee": PERSON, "title": "回滚", "due_at": "2026-01-01T10:00:00+00:00"}],
    "task.updated": [
        {"assignee": PERSON, "title": "回滚", "status": {"from": "open", "to": "acknowledged"}},
        {"assignee": PERSON, "title": "回滚", "progress": "一半", "due_at": "2026-01-01T11:00:00+00:00"},
    ],
    "plan.approved": [{"description": "切流量", "expected_impact": 3}],
    "update.posted": [{"kind": "progress", "body": "回滚中"}, {"kind": "note", "body": "银行已确认"}],
    "fault.mitigated": [{}],
    "fault.recovered": [{}],
    "fault.suspect_added": [{"business": {"id": 1, "name": "网关"}}],
    "conference.started": [{"url": "https://meeting.example/123"}],
    "monitoring.cleared": [{"alerts": 1}, {"alerts": 3}],
}


def test_every_progress_line_is_worded_in_both_languages(settings, db):
    from .factories import fault as declared_fault

    assert set(SYNC_EVENTS) == set(texts.SYNC)
    fault = declared_fault(title="支付失败")
    for kind, shapes in SYNC_EVENTS.items():
        for data in shapes:
            event = TimelineEvent(fault=fault, seq=99, kind=kind, actor_label="王五", data=data)
            worded = {}
            for language in ("en", "zh-hans"):
                settings.NOTIFY_GROUP_LANGUAGE = language
                worded[language] = texts.sync(event, fault)[1]
            assert worded["en"] != worded["zh-hans"], kind
            # Take out what is data (URLs, times, levels): nothing English may remain.
            rest = re.sub(r"https?://\S+|\d{4}-\d\d-\d\dT[\d:+]+|P\d|#\d+", "", worded["zh-hans"])
            assert not re.search(r"[A-Za-z]{2,}", rest), (kind, worded["zh-hans"])

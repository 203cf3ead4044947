"""Timeline sentences for what the notifications record, in English and Simplified Chinese.

The sentence is built from the event's data, so that a Chinese reader does not get the
English `data.text`; that text is only the fallback for data the page does not know.
"""

import pytest
from django.utils import translation

from incidents.event_types import EventKind
from warroom.event_text import event_text

LI = {"id": 1, "name": "Li Lei"}
HAN = {"id": 2, "name": "Han Meimei"}
ZHOU = {"id": 3, "name": "Zhou Ba"}


def event(kind, **data):
    return {"kind": kind, "actor": "War Room", "data": data, "at": "2026-03-01T10:30:00+00:00", "seq": 7}


CASES = [
    (
        event(EventKind.DELIVERY_OUTCOME, text="SMS to Li Lei delivered", channel="aliyun_sms", status="delivered", person=LI, transport="aliyun_sms", receipt={}),
        "SMS to Li Lei delivered",
        "发给 Li Lei 的短信已送达",
    ),
    (
        event(EventKind.DELIVERY_OUTCOME, text="Voice call to Han Meimei not answered", channel="aliyun_voice", status="failed", person=HAN, transport="aliyun_voice", receipt={}),
        "Voice call to Han Meimei not answered",
        "打给 Han Meimei 的语音电话未接听",
    ),
    (
        event(EventKind.DELIVERY_OUTCOME, text="DING call to Li Lei delivered (sandbox)", channel="dingtalk_ding_phone", status="delivered", person=LI, transport="sandbox"),
        "DING call to Li Lei delivered (sandbox)",
        "发给 Li Lei 的DING 电话已送达（沙箱）",
    ),
    (
        event(EventKind.DELIVERY_OUTCOME, text="Check-in card to the group sent", channel="dingtalk_card", status="sent", person=None, transport="dingtalk"),
        "Check-in card to the group sent",
        "发给 应急群 的签到卡片已发出",
    ),
    (
        event(EventKind.DELIVERY_OUTCOME, text="SMS to Li Lei failed (throttled); retrying in 20 s", channel="aliyun_sms", status="retrying", person=LI, error="throttled", transport="aliyun_sms"),
        "SMS to Li Lei failed (throttled); retrying",
        "发给 Li Lei 的短信发送失败（throttled），稍后重试",
    ),
    (
        event(EventKind.DELIVERY_OUTCOME, text="2 pending messages to Li Lei cancelled: Li Lei checked in", status="cancelled", count=2, person=LI, reason="Li Lei checked in"),
        "2 pending pages to Li Lei cancelled",
        "已取消发给 Li Lei 的 2 条待发呼叫",
    ),
    (
        event(EventKind.DELIVERY_OUTCOME, text="Collaboration group created with Li Lei, Han Meimei", channel="dingtalk_group_create", status="created", members=["Li Lei", "Han Meimei"], not_added=["Zhou Ba"], transport="sandbox"),
        "Collaboration group created with Li Lei, Han Meimei; could not add Zhou Ba (no DingTalk userId) (sandbox)",
        "已创建协作群，成员：Li Lei、Han Meimei；无法加入 Zhou Ba（没有钉钉 userId）（沙箱）",
    ),
    (
        event(EventKind.DELIVERY_OUTCOME, text="Could not start the video conference: nobody", channel="dingtalk_conference", status="failed", error="nobody who has checked in has a DingTalk unionId", transport="sandbox"),
        "Could not start the video conference: nobody who has checked in has a DingTalk unionId (sandbox)",
        "无法发起视频会议：nobody who has checked in has a DingTalk unionId（沙箱）",
    ),
    (
        event(EventKind.DELIVERY_OUTCOME, text="Could not page Li Lei: no paging method left", status="exhausted", person=LI),
        "Could not page Li Lei: no paging method left",
        "无法呼叫 Li Lei：没有可用的呼叫方式了",
    ),
    (
        event(EventKind.SLA_BREACHED, what="check_in", text="…", person=LI, waited_seconds=600, repaged=True, successor=None,
              escalation=[{"step": 1, "after_minutes": 10, "people": [ZHOU]}]),
        "Li Lei has not checked in within 10 min: paged again; escalated to Zhou Ba",
        "Li Lei 10 分钟内未签到：已再次呼叫；已升级至 Zhou Ba",
    ),
    (
        event(EventKind.SLA_BREACHED, what="check_in", text="…", person=LI, waited_seconds=1200, escalation=[{"step": 2, "people": [ZHOU]}]),
        "Li Lei has still not checked in after 20 min: escalated to Zhou Ba",
        "Li Lei 20 分钟后仍未签到：已升级至 Zhou Ba",
    ),
    (
        event(EventKind.SLA_BREACHED, what="check_in", text="…", person=LI, waited_seconds=600, repaged=False, escalation=[], successor=HAN),
        "Li Lei has not checked in within 10 min; Han Meimei takes over as commander",
        "Li Lei 10 分钟内未签到；由 Han Meimei 接任指挥官",
    ),
    (
        event(EventKind.SLA_BREACHED, what="progress_update", text="…", since="2026-03-01T10:00:00+00:00", reminded=[HAN, LI], missed=1),
        "No progress update for 30 min: Han Meimei, Li Lei reminded",
        "已 30 分钟没有进展更新：已提醒 Han Meimei、Li Lei",
    ),
    (
        event(EventKind.SLA_REMINDER, what="task_response", text="…", task=4, title="Roll back", assignee=HAN, due_at="2026-03-01T10:15:00+00:00"),
        "Task “Roll back” not acknowledged in time: Han Meimei reminded",
        "任务“Roll back”未按时确认：已提醒 Han Meimei",
    ),
    (
        event(EventKind.SLA_BREACHED, what="task_response", text="…", task=4, title="Roll back", assignee=HAN, flagged_to=LI),
        "Task “Roll back” still not acknowledged by Han Meimei: flagged to Li Lei",
        "任务“Roll back”仍未被 Han Meimei 确认：已告知 Li Lei",
    ),
    (
        {**event(EventKind.CONFERENCE_REQUESTED, requested_by=LI), "actor": "Li Lei"},
        "Li Lei asked for a video conference with everyone who has checked in",
        "Li Lei 发起了视频会议，邀请所有已签到的人",
    ),
    (
        event(EventKind.CONFERENCE_STARTED, url="https://meeting.dingtalk.com/j/abc", members=["Li Lei", "Han Meimei"], transport="dingtalk"),
        "The video conference has started with Li Lei, Han Meimei: https://meeting.dingtalk.com/j/abc",
        "视频会议已开始，参会人：Li Lei、Han Meimei：https://meeting.dingtalk.com/j/abc",
    ),
]


@pytest.mark.parametrize("message,english,chinese", CASES, ids=[f"{c[0]['kind']}-{i}" for i, c in enumerate(CASES)])
def test_each_new_kind_reads_as_a_sentence_in_both_languages(message, english, chinese):
    with translation.override("en"):
        assert event_text(message) == english
    with translation.override("zh-hans"):
        assert event_text(message) == chinese


def test_an_outcome_the_page_does_not_know_falls_back_to_the_recorded_text():
    message = event(EventKind.DELIVERY_OUTCOME, text="Something new happened to the SMS", channel="aliyun_sms", status="queued-by-carrier")
    with translation.override("zh-hans"):
        assert event_text(message) == "Something new happened to the SMS"
    assert event_text(event(EventKind.SLA_BREACHED, what="notify", text="Nobody was notified within 5 min")) == (
        "Nobody was notified within 5 min"
    )

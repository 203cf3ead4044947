from datetime import timedelta

import pytest
from rest_framework.test import APIClient

from incidents import metrics, services
from incidents.models import Level, RecoverySummary, StatusUpdate, Task

from . import factories as f
from .factories import Cast

pytestmark = pytest.mark.django_db

MIN = timedelta(minutes=1)


def test_recovery_keeps_a_summary_of_every_stage_and_sla(clock):
    detected = clock.now()
    clock.advance(2 * MIN)
    # P2: check in within 15m, task response within 30m, progress every 30m.
    cast = Cast(level=Level.P2, detected_at=detected)
    fault = cast.fault
    c = cast.commander_user
    services.delivery_outcome_record(fault=fault, text="SMS to Li Lei delivered", data={"status": "delivered"})
    notified = clock.now()
    clock.advance(3 * MIN)
    services.role_check_in(fault=fault, person=cast.handler, actor=cast.handler_user)
    task = services.task_create(fault=fault, assignee=cast.handler, kind=Task.Kind.RECOVER, title="Roll back", actor=c)
    clock.advance(4 * MIN)
    services.task_update(task=task, status=Task.Status.ACKNOWLEDGED, actor=cast.handler_user)
    clock.advance(11 * MIN)
    services.status_update_post(fault=fault, body="Rolled back", kind=StatusUpdate.Kind.PROGRESS, actor=c)
    services.fault_mark_mitigated(fault=fault, actor=c)
    clock.advance(10 * MIN)
    fault = services.fault_mark_recovered(fault=fault, actor=c)

    summary = RecoverySummary.objects.get(fault=fault)
    minutes = lambda s: None if s is None else s / 60  # noqa: E731
    assert minutes(summary.time_to_declare) == 2
    assert summary.time_to_notify == (notified - detected).total_seconds() == 120
    assert minutes(summary.time_to_check_in) == 5
    assert minutes(summary.time_to_engage) == 9
    assert minutes(summary.time_to_mitigate) == 20
    assert minutes(summary.time_to_recover) == 30

    sla = summary.data["sla"]
    verdicts = {(r["person"], r["role"]): r["verdict"] for r in sla["roles"]}
    # The commander never checked in: 28 minutes after assignment, past P2's 15.
    assert verdicts == {("Zhang Wei", "commander"): "missed", ("Li Lei", "emergency_handler"): "met"}
    assert [t["verdict"] for t in sla["tasks"]] == ["met"]
    assert sla["notify"]["verdict"] == "met"
    # Progress every 30m on P2: gaps were 18m then 10m.
    assert sla["progress"] == {"updates": 1, "longest_gap": 18 * 60.0, "every": 30 * 60.0, "verdict": "met"}
    assert (summary.sla_met, summary.sla_total) == (4, 5)
    assert summary.data["deliveries"] == {"delivered": 1}
    # The summary is on the recovery event itself.
    assert fault.timeline.last().data["summary"]["times"]["recover"] == 30 * 60.0


def test_reopening_and_recovering_again_replaces_the_summary(clock):
    cast = Cast()
    services.fault_mark_recovered(fault=cast.fault, actor=cast.commander_user)
    services.fault_reopen(fault=cast.fault, actor=cast.commander_user)
    clock.advance(45 * MIN)
    services.fault_mark_recovered(fault=cast.fault, actor=cast.commander_user)
    summary = RecoverySummary.objects.get(fault=cast.fault)
    assert summary.time_to_recover == 45 * 60.0
    assert summary.data["sla"]["progress"]["verdict"] == "missed"  # no progress update in 45 minutes


def test_the_summary_and_trends_are_in_the_api(clock):
    cast = Cast(level=Level.P1)
    client = APIClient()
    client.force_authenticate(cast.stakeholder)
    response = client.get(f"/api/v1/faults/{cast.fault.pk}/summary/")
    assert response.status_code == 404
    assert "has not recovered yet" in response.json()["detail"]
    clock.advance(20 * MIN)
    services.fault_mark_recovered(fault=cast.fault, actor=cast.commander_user)
    other = f.fault(level=Level.P1)
    clock.advance(40 * MIN)
    services.fault_mark_recovered(fault=other)
    body = client.get(f"/api/v1/faults/{cast.fault.pk}/summary/").json()
    assert (body["level"], body["data"]["times"]["recover"]) == ("P1", 1200.0)
    trends = client.get("/api/v1/metrics/").json()["levels"]
    assert [(t["level"], t["faults"], t["mean_time_to_recover"]) for t in trends] == [("P1", 2, 1800.0)]
    assert client.get("/api/v1/metrics/?since=tomorrow").status_code == 400
    future = (clock.now() + timedelta(days=1)).isoformat().replace("+00:00", "Z")
    assert client.get("/api/v1/metrics/", {"since": future}).json() == {"levels": []}
    outsider = APIClient()
    outsider.force_authenticate(cast.outsider)
    assert outsider.get("/api/v1/metrics/").status_code == 403


def test_durations_read_as_people_say_them_in_their_language():
    from django.utils import translation

    seconds = (None, 9, 125, 3 * 3600 + 61)
    with translation.override("en"):
        assert [metrics.format_duration(s) for s in seconds] == ["—", "9s", "2m 05s", "3h 01m"]
    with translation.override("zh-hans"):
        assert [metrics.format_duration(s) for s in seconds] == ["—", "9秒", "2分05秒", "3小时01分"]

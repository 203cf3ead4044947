"""The war-room pages: who sees what, who may do what, and what bad input gets back."""

from datetime import timedelta

import pytest
from django.test import Client

from incidents import services
from incidents.models import Fault, Level, MitigationPlan, RoleAssignment, SLAPolicy, Task
from incidents.tests.factories import Cast, business, fault, user
from notifications.outbox.attempts import delivery_attempt
from notifications.models import Delivery

pytestmark = pytest.mark.django_db


def client_for(u) -> Client:
    c = Client()
    c.force_login(u)
    return c


def act(c: Client, f: Fault, action: str, **data):
    return c.post(f"/faults/{f.pk}/act/{action}/", data)


def last_seq(f: Fault) -> int:
    return Fault.objects.values_list("last_seq", flat=True).get(pk=f.pk)


@pytest.fixture
def cast():
    return Cast(level=Level.P2)


@pytest.fixture
def task(cast):
    return services.task_create(
        fault=cast.fault, assignee=cast.handler, kind=Task.Kind.INVESTIGATE, title="Check the gateway", actor=None
    )


@pytest.fixture
def plan(cast):
    return services.plan_propose(fault=cast.fault, description="Fail over to the standby", expected_impact=3, actor=None)


def every_action(cast, task, plan) -> dict:
    return {
        "assign": {"assign-person": cast.handler.pk, "assign-role": "commander"},
        "check_in": {"checkin-person": cast.handler.pk},
        "task_create": {"task-assignee": cast.handler.pk, "task-kind": "recover", "task-title": "Roll back"},
        "task_update": {"taskupd-task": task.pk, "taskupd-status": "done"},
        "plan_propose": {"plan-description": "Restart", "plan-expected_impact": "4"},
        "plan_decide": {"decide-plan": plan.pk, "decide-decision": "approve"},
        "update": {"update-kind": "note", "update-body": "Looking"},
        "level": {"level-level": "1"},
        "status": {"status-to": "mitigated"},
    }


def test_the_pages_send_anonymous_visitors_to_the_login_page(cast):
    for path in ["/faults/", f"/faults/{cast.fault.pk}/", "/faults/new/", f"/faults/{cast.fault.pk}/panels/"]:
        response = Client().get(path)
        assert response.status_code == 302
        assert response["Location"].startswith("/login/?next=")
    assert Client().get("/").headers["Location"] == "/faults/"


def test_a_stakeholder_can_log_in_on_the_site_login_page(cast):
    cast.stakeholder.set_password("a long demo password")
    cast.stakeholder.save()
    c = Client()
    assert c.get("/login/").status_code == 200
    response = c.post("/login/", {"username": "stakeholder", "password": "a long demo password"})
    assert response.status_code == 302 and response["Location"] == "/faults/"
    assert c.get(f"/faults/{cast.fault.pk}/").status_code == 200


def test_a_stakeholder_reads_the_war_room_without_any_control(cast, task, plan):
    response = client_for(cast.stakeholder).get(f"/faults/{cast.fault.pk}/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Checkout fails" in html and "Check the gateway" in html and "Fail over to the standby" in html
    assert "/act/" not in html
    assert "<form" in html  # only the language switch and logout
    assert html.count("<form") == 2


def test_a_stakeholder_who_posts_anyway_is_refused_every_action(cast, task, plan):
    c = client_for(cast.stakeholder)
    before = last_seq(cast.fault)
    for action, data in every_action(cast, task, plan).items():
        response = act(c, cast.fault, action, **data)
        assert response.status_code == 403, action
        assert "Only people with a role in this fault may act on it." in response.content.decode()
    assert last_seq(cast.fault) == before


def test_an_outsider_may_not_see_the_fault_or_its_panels(cast):
    c = client_for(cast.outsider)
    assert c.get(f"/faults/{cast.fault.pk}/").status_code == 403
    assert c.get(f"/faults/{cast.fault.pk}/panels/").status_code == 403
    assert act(c, cast.fault, "update", **{"update-kind": "note", "update-body": "x"}).status_code == 403
    assert "Checkout fails" not in c.get("/faults/").content.decode()


def test_a_missing_fault_is_a_404_and_so_is_an_unknown_action(cast):
    c = client_for(cast.commander_user)
    assert c.get("/faults/999999/").status_code == 404
    assert act(c, cast.fault, "explode").status_code == 404
    assert c.get(f"/faults/{cast.fault.pk}/act/update/").status_code == 405


def test_a_handler_updates_his_task_and_adds_notes_but_runs_nothing_else(cast, task, plan):
    c = client_for(cast.handler_user)
    html = c.get(f"/faults/{cast.fault.pk}/").content.decode()
    assert "/act/task_update/" in html and "/act/check_in/" in html and "/act/plan_propose/" in html
    assert "/act/assign/" not in html and "/act/level/" not in html and "/act/status/" not in html

    response = act(c, cast.fault, "task_update", **{"taskupd-task": task.pk, "taskupd-progress": "Gateway is fine"})
    assert response.status_code == 302 and response["Location"].endswith("#tasks")
    assert Task.objects.get(pk=task.pk).progress == "Gateway is fine"
    assert act(c, cast.fault, "check_in").status_code == 302
    assert RoleAssignment.objects.get(fault=cast.fault, person=cast.handler).checked_in_at is not None
    assert act(c, cast.fault, "update", **{"update-kind": "note", "update-body": "DNS looks fine"}).status_code == 302

    refused = act(c, cast.fault, "assign", **{"assign-person": cast.handler.pk, "assign-role": "commander"})
    assert refused.status_code == 403
    assert "Only this fault&#x27;s commander" in refused.content.decode()
    assert act(c, cast.fault, "plan_decide", **{"decide-plan": plan.pk, "decide-decision": "approve"}).status_code == 403
    assert act(c, cast.fault, "status", **{"status-to": "mitigated"}).status_code == 403
    # Progress updates are the commander's; the handler's form offers notes only.
    assert act(c, cast.fault, "update", **{"update-kind": "progress", "update-body": "All good"}).status_code == 400


def test_the_commander_runs_the_response_from_the_page(cast, plan):
    c = client_for(cast.commander_user)
    assert act(c, cast.fault, "task_create", **{
        "task-assignee": cast.handler.pk, "task-kind": "recover", "task-title": "Roll back", "task-due_in_minutes": "20",
    }).status_code == 302
    assert cast.fault.tasks.get().title == "Roll back"
    assert act(c, cast.fault, "plan_decide", **{"decide-plan": plan.pk, "decide-decision": "approve"}).status_code == 302
    assert MitigationPlan.objects.get(pk=plan.pk).status == "approved"
    assert act(c, cast.fault, "update", **{"update-kind": "progress", "update-body": "Rolling back"}).status_code == 302
    assert act(c, cast.fault, "level", **{"level-level": "1", "level-reason": "More users"}).status_code == 302
    assert act(c, cast.fault, "status", **{"status-to": "mitigated"}).status_code == 302
    assert act(c, cast.fault, "status", **{"status-to": "recovered"}).status_code == 302
    assert act(c, cast.fault, "status", **{"status-to": "closed"}).status_code == 302
    assert Fault.objects.get(pk=cast.fault.pk).status == "closed"
    page = c.get(f"/faults/{cast.fault.pk}/")
    assert "Status changed." in page.content.decode()


def test_the_guardrail_sentence_is_shown_when_a_too_severe_plan_is_approved(cast):
    severe = services.plan_propose(fault=cast.fault, description="Take payments offline", expected_impact=1, actor=None)
    c = client_for(cast.commander_user)
    html = c.get(f"/faults/{cast.fault.pk}/").content.decode()
    assert "More severe than the fault (P2): raise the fault to P1 before approving." in html
    response = act(c, cast.fault, "plan_decide", **{"decide-plan": severe.pk, "decide-decision": "approve"})
    assert response.status_code == 409
    assert "is more severe than the fault&#x27;s level (P2)" in response.content.decode()
    assert MitigationPlan.objects.get(pk=severe.pk).status == "proposed"


def test_bad_input_comes_back_as_a_message_beside_the_form(cast, task):
    c = client_for(cast.commander_user)
    cases = [
        ("task_create", {"task-assignee": cast.handler.pk, "task-kind": "recover", "task-title": ""}, 400, "This field is required."),
        ("task_create", {"task-assignee": cast.handler.pk, "task-kind": "nap", "task-title": "x"}, 400, "Select a valid choice."),
        ("task_create", {"task-assignee": cast.handler.pk, "task-kind": "recover", "task-title": "x", "task-due_in_minutes": "-5"}, 400, "greater than or equal to 1"),
        ("task_create", {"task-assignee": cast.stakeholder.pk + 999, "task-kind": "recover", "task-title": "x"}, 400, "Select a valid choice."),
        ("task_update", {"taskupd-task": task.pk}, 400, "Give a new status or some progress."),
        ("task_update", {"taskupd-task": "abc", "taskupd-status": "done"}, 400, "Select a valid choice."),
        ("level", {"level-level": "2"}, 400, "The fault is already P2."),
        ("level", {"level-level": "9"}, 400, "Select a valid choice."),
        ("status", {"status-to": "closed"}, 409, "it can become closed only from recovered"),
        ("assign", {"assign-person": cast.commander.pk, "assign-role": "commander"}, 400, "is already commander of this fault"),
        ("update", {"update-kind": "progress", "update-body": "   "}, 400, "This field is required."),
        ("plan_decide", {"decide-plan": "0", "decide-decision": "approve"}, 400, "Select a valid choice."),
    ]
    for action, data, status, text in cases:
        response = act(c, cast.fault, action, **data)
        assert response.status_code == status, (action, data, response.status_code)
        assert text in response.content.decode(), (action, text)


def test_the_declare_form_declares_a_fault_or_says_what_is_wrong():
    declarer = user("declarer", "incidents.view_fault", "incidents.add_fault")
    payments = business("Payments")
    c = client_for(declarer)
    assert c.get("/faults/new/").status_code == 200
    assert c.post("/faults/new/", {"title": "", "level": "2", "affected_business": payments.pk}).status_code == 400
    response = c.post("/faults/new/", {"title": "Slow checkout", "level": "9", "affected_business": payments.pk})
    assert response.status_code == 400 and "Select a valid choice." in response.content.decode()
    response = c.post("/faults/new/", {"title": "Slow checkout", "level": "3", "affected_business": payments.pk})
    created = Fault.objects.get(title="Slow checkout")
    assert response.status_code == 302 and response["Location"] == f"/faults/{created.pk}/"
    assert created.level == 3


def test_a_stakeholder_may_not_declare(cast):
    c = client_for(cast.stakeholder)
    assert c.get("/faults/new/").status_code == 403
    assert c.post("/faults/new/", {"title": "x", "level": "2", "affected_business": business().pk}).status_code == 403


def test_the_list_shows_open_faults_first_with_my_role(cast):
    services.fault_mark_recovered(fault=cast.fault, actor=None)
    newer = fault(level=Level.P3, title="Search is slow", commander=cast.handler)
    html = client_for(cast.handler_user).get("/faults/").content.decode()
    assert html.index("Search is slow") < html.index("Checkout fails")
    row = html[html.index("Search is slow"):]
    assert "Commander" in row[: row.index("</li>")]
    assert newer.pk


def test_the_page_speaks_the_chosen_language(cast):
    c = client_for(cast.stakeholder)
    assert c.post("/i18n/setlang/", {"language": "zh-hans", "next": "/faults/"}).status_code == 302
    html = c.get(f"/faults/{cast.fault.pk}/").content.decode()
    assert '<html lang="zh-hans">' in html
    assert "角色与签到" in html and "时间线" in html
    assert "宣告了 P2 故障：Checkout fails" in html
    assert "已持续" in c.get("/faults/").content.decode()
    catalog = c.get("/jsi18n/").content.decode()
    assert "\\u5b9e\\u65f6" in catalog or "实时" in catalog  # "Live"


def test_the_panels_are_the_page_without_its_frame(cast, task):
    html = client_for(cast.stakeholder).get(f"/faults/{cast.fault.pk}/panels/").content.decode()
    assert 'data-region="header"' in html and 'data-region="timeline"' in html
    assert "<html" not in html and "Check the gateway" in html



def test_the_header_and_roles_count_down_to_the_next_progress_update_and_the_check_in_deadline(clock):
    cast = Cast(level=Level.P2)  # P2: check in within 15 minutes, progress every 30
    declared = cast.fault.declared_at
    c = client_for(cast.stakeholder)
    html = c.get(f"/faults/{cast.fault.pk}/").content.decode()
    assert f'data-deadline="{(declared + timedelta(minutes=30)).isoformat()}"' in html
    assert f'data-deadline="{(declared + timedelta(minutes=15)).isoformat()}"' in html
    assert "Waiting" in html and "Late" not in html

    clock.advance(timedelta(minutes=16))
    posted = services.status_update_post(fault=cast.fault, body="Rolling back", actor=None).posted_at
    html = c.get(f"/faults/{cast.fault.pk}/").content.decode()
    assert f'data-deadline="{(posted + timedelta(minutes=30)).isoformat()}"' in html
    assert html.count(">Late<") == 2  # the commander and the handler have not checked in

    services.fault_mark_recovered(fault=cast.fault, actor=None)
    html = c.get(f"/faults/{cast.fault.pk}/").content.decode()
    assert "Next progress update" not in html  # repeats stop at recovery
    assert f'data-elapsed-until="{Fault.objects.get(pk=cast.fault.pk).recovered_at.isoformat()}"' in html


def test_a_level_whose_sla_was_deleted_counts_down_to_the_defaults_that_paging_applies(clock):
    SLAPolicy.objects.filter(level=Level.P3).delete()
    cast = Cast(level=Level.P3)
    declared = cast.fault.declared_at
    html = client_for(cast.stakeholder).get(f"/faults/{cast.fault.pk}/").content.decode()
    # The P1 defaults (incidents.selectors.FALLBACK_SLA): progress every 15 minutes, check in within 10.
    assert f'data-deadline="{(declared + timedelta(minutes=15)).isoformat()}"' in html
    assert f'data-deadline="{(declared + timedelta(minutes=10)).isoformat()}"' in html


def test_the_roles_board_and_the_delivery_log_show_who_was_paged_how_and_with_what_result(cast):
    # The declaration paged him; a worker sends it.
    page = Delivery.objects.get(fault=cast.fault, person=cast.handler, purpose=Delivery.Purpose.PAGE)
    delivery_attempt(delivery_id=page.pk)
    page = Delivery.objects.get(pk=page.pk)
    assert page.transport == "sandbox"

    html = client_for(cast.stakeholder).get(f"/faults/{cast.fault.pk}/").content.decode()
    roles = html[html.index('id="roles"') : html.index('id="tasks"')]
    assert f"Paged by {page.get_channel_display()}: {page.get_status_display()}" in roles
    log = html[html.index('id="deliveries"') :]
    assert "Who was reached" in log
    assert "Li Lei" in log and str(page.get_channel_display()) in log and str(page.get_status_display()) in log
    assert "(sandbox)" in log


def test_a_provider_outage_is_a_banner_on_the_page_and_a_sentence_on_the_timeline(cast, settings):
    from django.utils import timezone

    from notifications.models import ProviderState
    from notifications.outbox import outages

    settings.NOTIFY_OUTAGE_AFTER = 2
    for _ in range(2):
        outages.observe("dingtalk", ok=False, error="HTTP 503")
    assert ProviderState.objects.get(transport="dingtalk").outage_since <= timezone.now()
    page = client_for(cast.stakeholder).get(f"/faults/{cast.fault.pk}/").content.decode()
    assert "DingTalk has been failing for everyone since" in page
    assert "DingTalk is failing for everyone (2 attempts in a row)" in page

    outages.observe("dingtalk", ok=True)
    page = client_for(cast.stakeholder).get(f"/faults/{cast.fault.pk}/").content.decode()
    assert "has been failing for everyone" not in page and "DingTalk answers again after 0 min" in page


def test_stakeholders_share_one_render_of_the_panels_per_event_and_participants_get_their_own(cast, django_assert_max_num_queries):
    other = user("stakeholder-2", "incidents.view_fault")
    first = client_for(cast.stakeholder).get(f"/faults/{cast.fault.pk}/panels/")
    assert first.status_code == 200
    reader = client_for(other)
    with django_assert_max_num_queries(10):  # the session, the user, the fault, the roles: no render
        again = reader.get(f"/faults/{cast.fault.pk}/panels/")
    assert again.content == first.content

    services.status_update_post(fault=cast.fault, body="Rollback at 50%", actor=cast.commander_user)
    fresh = client_for(other).get(f"/faults/{cast.fault.pk}/panels/").content.decode()
    assert "Rollback at 50%" in fresh

    mine = client_for(cast.commander_user).get(f"/faults/{cast.fault.pk}/panels/").content.decode()
    assert "csrfmiddlewaretoken" in mine and mine != fresh


def _lengthen(f: Fault, events: int, actor) -> None:
    """Give the fault `events` more timeline events: progress updates and delivered pages."""
    from incidents.services import delivery_outcome_record

    for i in range(events // 2):
        services.status_update_post(fault=f, body=f"Step {i}: still rolling back", actor=actor)
        delivery_outcome_record(fault=f, text=f"DING to someone sent ({i})", data={"status": "sent"})


@pytest.mark.parametrize("path", ["/faults/{pk}/", "/faults/{pk}/panels/"])
def test_the_war_room_does_not_grow_with_the_faults_length(cast, path, django_assert_max_num_queries):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def measure():
        c = client_for(cast.commander_user)
        with CaptureQueriesContext(connection) as queries:
            body = c.get(path.format(pk=cast.fault.pk)).content
        return len(body), len(queries)

    _lengthen(cast.fault, 10, cast.commander_user)
    short_bytes, short_queries = measure()
    _lengthen(cast.fault, 2000, cast.commander_user)
    long_bytes, long_queries = measure()
    # Once every list is full the page stops growing: the long fault's page is as big as a
    # fault with a full page of each list, not 2,000 events' worth.
    assert long_queries <= short_queries + 2
    assert long_bytes < 150_000, long_bytes
    assert long_bytes < short_bytes * 4, (short_bytes, long_bytes)


def test_the_timeline_api_answers_a_bounded_page(cast):
    _lengthen(cast.fault, 600, cast.commander_user)
    c = client_for(cast.commander_user)
    first = c.get(f"/api/v1/faults/{cast.fault.pk}/timeline/?after=0").json()
    events = first if isinstance(first, list) else first.get("results", first.get("events"))
    assert 0 < len(events) <= 200
    seqs = [e["seq"] for e in events]
    assert seqs == sorted(seqs) and seqs[0] == 1

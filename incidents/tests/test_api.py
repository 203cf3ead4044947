from datetime import timedelta

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from incidents import services
from incidents.models import Fault, Level, RoleAssignment, Task

from . import factories as f
from .factories import Cast

pytestmark = pytest.mark.django_db


@pytest.fixture
def cast():
    return Cast()


def client_for(user=None):
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def url(fault, tail=""):
    return f"/api/v1/faults/{fault.pk}/{tail}"


# --- reading --------------------------------------------------------------------------------


def test_a_token_reads_the_fault_list(cast, capsys):
    call_command("create_api_token", "stakeholder")
    token = capsys.readouterr().out.strip()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    response = client.get("/api/v1/faults/")
    assert response.status_code == 200
    (row,) = response.json()["results"]
    assert (row["id"], row["level"], row["status"]) == (cast.fault.pk, "P2", "declared")
    assert {r["role"] for r in row["roles"]} == {"commander", "emergency_handler"}


def test_reading_a_fault_costs_the_same_queries_however_many_roles_it_has(cast):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = client_for(cast.commander_user)

    def queries():
        with CaptureQueriesContext(connection) as captured:
            assert client.get(url(cast.fault)).status_code == 200
        return len(captured)

    queries()  # the user's permissions are read once, then kept on the user
    few = queries()
    for n in range(4):
        services.role_assign(
            fault=cast.fault, person=f.person(f"Helper {n}"), role=RoleAssignment.Role.EMERGENCY_HANDLER
        )
    assert len(client.get(url(cast.fault)).json()["roles"]) >= 6
    assert queries() == few


def test_create_api_token_refuses_an_unknown_user():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="no user 'ghost'"):
        call_command("create_api_token", "ghost")


def test_anonymous_requests_are_told_to_authenticate(cast):
    response = client_for().get("/api/v1/faults/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert "credentials were not provided" in response.json()["detail"]


def test_a_bad_token_is_refused(cast):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token nope")
    assert client.get("/api/v1/faults/").status_code == 401


def test_a_user_without_view_permission_sees_only_his_own_faults(cast):
    other = f.fault(title="Other fault")
    no_perm = f.user("plain")
    person = f.person("Plain", no_perm)
    services.role_assign(fault=other, person=person, role="emergency_handler")
    ids = [row["id"] for row in client_for(no_perm).get("/api/v1/faults/").json()["results"]]
    assert ids == [other.pk]
    response = client_for(no_perm).get(url(cast.fault))
    assert response.status_code == 403
    assert response.json()["detail"] == "You may not see this fault."


def test_the_list_filters_by_status_level_and_business(cast):
    payments = f.business("Payments")
    p1 = f.fault(level=Level.P1, affected=payments, title="P1 in payments")
    suspected = f.fault(level=Level.P3, suspects=[payments], title="suspected payments")
    services.fault_mark_recovered(fault=suspected)
    c = client_for(cast.stakeholder)

    def ids(query):
        response = c.get("/api/v1/faults/?" + query)
        assert response.status_code == 200, response.content
        return sorted(row["id"] for row in response.json()["results"])

    assert ids("level=P1") == [p1.pk]
    assert ids("level=3") == [suspected.pk]
    assert ids("status=recovered") == [suspected.pk]
    assert ids("status=declared&status=recovered") == sorted([cast.fault.pk, p1.pk, suspected.pk])
    assert ids(f"business={payments.slug}") == sorted([p1.pk, suspected.pk])
    assert ids(f"business={payments.pk}") == sorted([p1.pk, suspected.pk])


@pytest.mark.parametrize("query", ["status=exploded", "level=P9"])
def test_a_bad_filter_is_a_400_with_a_message(cast, query):
    response = client_for(cast.stakeholder).get("/api/v1/faults/?" + query)
    assert response.status_code == 400
    assert "not one of the available choices" in str(response.json())


def test_the_timeline_gives_what_came_after_a_seq(cast):
    services.status_update_post(fault=cast.fault, body="one", actor=cast.commander_user)
    services.status_update_post(fault=cast.fault, body="two", actor=cast.commander_user)
    response = client_for(cast.stakeholder).get(url(cast.fault, "timeline/?after=2"))
    assert response.status_code == 200
    assert [(e["seq"], e["kind"], e["data"].get("body")) for e in response.json()] == [
        (3, "update.posted", "one"),
        (4, "update.posted", "two"),
    ]
    assert response.json()[0]["actor"] == "Zhang Wei"


@pytest.mark.parametrize("after", ["x", "-1", "1.5"])
def test_a_bad_after_is_a_400(cast, after):
    response = client_for(cast.stakeholder).get(url(cast.fault, f"timeline/?after={after}"))
    assert response.status_code == 400
    assert "whole number" in response.json()["after"]


def test_unknown_ids_are_404_with_a_message(cast):
    c = client_for(cast.manager)
    assert c.get("/api/v1/faults/999999/").json() == {"detail": "There is no fault 999999."}
    response = c.patch(url(cast.fault, "tasks/424242/"), {"progress": "x"}, format="json")
    assert response.status_code == 404
    assert response.json()["detail"] == f"Fault #{cast.fault.pk} has no task 424242."
    assert c.post(url(cast.fault, "plans/424242/approve/")).status_code == 404


def test_a_task_of_another_fault_is_not_reachable_through_this_one(cast):
    second = f.fault(commander=cast.commander)
    task = services.task_create(fault=second, assignee=cast.commander, kind="recover", title="x")
    assert client_for(cast.manager).get(url(cast.fault, f"tasks/{task.pk}/")).status_code == 404
    assert client_for(cast.manager).get(url(second, f"tasks/{task.pk}/")).status_code == 200


# --- declaring ------------------------------------------------------------------------------


def test_declaring_through_the_api(cast):
    orders, payments = f.business("Orders"), f.business("Payments")
    body = {
        "title": "Orders cannot be paid",
        "level": "P1",
        "impact": "All orders fail at payment",
        "affected_business": orders.pk,
        "suspected_cause_businesses": [payments.pk],
        "commander": cast.commander.pk,
    }
    response = client_for(cast.declarer).post("/api/v1/faults/", body, format="json")
    assert response.status_code == 201, response.content
    data = response.json()
    assert (data["level"], data["status"], data["affected_business"]["slug"]) == ("P1", "declared", orders.slug)
    assert [b["name"] for b in data["suspected_cause_businesses"]] == ["Payments"]
    fault = Fault.objects.get(pk=data["id"])
    assert fault.declared_by == cast.declarer
    assert fault.timeline.get().actor_label == "declarer"


@pytest.mark.parametrize(
    "body, field, message",
    [
        ({}, "title", "This field is required."),
        ({"title": "x", "level": "P7"}, "level", "Level must be one of P1, P2, P3, P4."),
        ({"title": "x", "level": True}, "level", "Level must be one of P1, P2, P3, P4."),
        ({"title": "x", "level": 1, "affected_business": 999999}, "affected_business", "Invalid pk"),
        ({"title": "x", "level": 1, "affected_business": "orders"}, "affected_business", "Incorrect type"),
        ({"title": "x", "level": 1, "detected_at": "yesterday"}, "detected_at", "Datetime has wrong format"),
        ({"title": "x", "level": 1, "suspected_cause_businesses": "1"}, "suspected_cause_businesses", "Expected a list"),
    ],
)
def test_bad_declarations_are_400_with_the_field_named(cast, body, field, message):
    response = client_for(cast.declarer).post("/api/v1/faults/", body, format="json")
    assert response.status_code == 400
    assert message in str(response.json()[field])
    assert Fault.objects.count() == 1


def test_a_declaration_from_the_future_is_refused_by_the_service(cast, clock):
    body = {
        "title": "x",
        "level": 2,
        "affected_business": f.business().pk,
        "detected_at": (clock.now() + timedelta(days=1)).isoformat(),
    }
    response = client_for(cast.declarer).post("/api/v1/faults/", body, format="json")
    assert response.status_code == 400
    assert response.json() == {"detail": "The detection time is in the future.", "code": "invalid"}


def test_malformed_json_is_a_400(cast):
    response = client_for(cast.declarer).post("/api/v1/faults/", "{not json", content_type="application/json")
    assert response.status_code == 400
    assert "JSON parse error" in response.json()["detail"]


@pytest.mark.parametrize("who", ["stakeholder", "outsider", "handler_user"])
def test_only_duty_engineers_and_managers_declare(cast, who):
    body = {"title": "x", "level": 2, "affected_business": f.business().pk}
    response = client_for(getattr(cast, who)).post("/api/v1/faults/", body, format="json")
    assert response.status_code == 403
    assert response.json()["detail"] == "You may not declare faults."


# --- the permission matrix for actions ------------------------------------------------------


def _actions(cast):
    """(name, method, path, body) for every action, in an order that is valid for one fault."""
    handler = cast.handler.pk
    return [
        ("assign", "post", "assign/", {"person": f.person().pk, "role": "emergency_handler"}),
        ("level", "post", "level/", {"level": "P1", "reason": "spreading"}),
        ("task", "post", "tasks/", {"assignee": handler, "kind": "investigate", "title": "Find the cause"}),
        ("plan", "post", "plans/", {"description": "Restart", "expected_impact": "P2"}),
        ("update", "post", "updates/", {"body": "Rolling back"}),
        ("mitigated", "post", "mitigated/", None),
        ("recovered", "post", "recovered/", None),
        ("close", "post", "close/", None),
    ]


@pytest.mark.parametrize("who", ["commander_user", "manager"])
def test_the_commander_and_managers_drive_a_fault_to_closed(cast, who):
    c = client_for(getattr(cast, who))
    for name, method, tail, body in _actions(cast):
        response = getattr(c, method)(url(cast.fault, tail), body, format="json")
        assert response.status_code in (200, 201), (name, response.content)
    plan = cast.fault.plans.get()
    assert plan.status == "proposed"
    cast.fault.refresh_from_db()
    assert cast.fault.status == Fault.Status.CLOSED
    assert c.get(url(cast.fault)).json()["status"] == "closed"


@pytest.mark.parametrize("who, expected", [("stakeholder", 403), ("outsider", 403), ("handler_user", 403), (None, 401)])
def test_everyone_else_is_refused_every_commander_action(cast, who, expected):
    c = client_for(getattr(cast, who) if who else None)
    for name, method, tail, body in _actions(cast):
        if name == "plan" and who == "handler_user":
            continue  # handlers may propose plans: tested below
        response = getattr(c, method)(url(cast.fault, tail), body, format="json")
        assert response.status_code == expected, (name, response.content)
        assert response.json()["detail"]
    assert cast.fault.timeline.count() == 2  # declared + the handler's assignment


def test_a_handler_checks_himself_in_and_no_one_else(cast):
    c = client_for(cast.handler_user)
    response = c.post(url(cast.fault, "check-in/"), {}, format="json")
    assert response.status_code == 200
    mine = [r for r in response.json()["roles"] if r["person"]["id"] == cast.handler.pk]
    assert mine[0]["checked_in_at"] is not None
    response = c.post(url(cast.fault, "check-in/"), {"person": cast.commander.pk}, format="json")
    assert response.status_code == 403
    assert response.json()["detail"] == "You may check in only yourself."


def test_checking_in_twice_is_harmless(cast):
    c = client_for(cast.handler_user)
    assert c.post(url(cast.fault, "check-in/")).status_code == 200
    assert c.post(url(cast.fault, "check-in/")).status_code == 200
    assert cast.fault.timeline.filter(kind="role.checked_in").count() == 1


def test_a_user_without_a_person_must_say_whom_to_check_in(cast):
    response = client_for(cast.manager).post(url(cast.fault, "check-in/"), {}, format="json")
    assert response.status_code == 400
    assert "not linked to a person" in response.json()["person"]


def test_a_stakeholder_cannot_check_in_someone(cast):
    response = client_for(cast.stakeholder).post(url(cast.fault, "check-in/"), {"person": cast.handler.pk}, format="json")
    assert response.status_code == 403


def test_a_handler_updates_his_own_task_but_not_anothers(cast):
    mine = services.task_create(fault=cast.fault, assignee=cast.handler, kind="recover", title="Roll back")
    theirs = services.task_create(fault=cast.fault, assignee=cast.commander, kind="sync", title="Tell the CEO")
    c = client_for(cast.handler_user)
    response = c.patch(url(cast.fault, f"tasks/{mine.pk}/"), {"progress": "half way", "status": "acknowledged"}, format="json")
    assert response.status_code == 200, response.content
    assert (response.json()["status"], response.json()["progress"]) == ("acknowledged", "half way")
    response = c.patch(url(cast.fault, f"tasks/{theirs.pk}/"), {"progress": "mine"}, format="json")
    assert response.status_code == 403
    assert "assignee" in response.json()["detail"]
    assert c.get(url(cast.fault, "tasks/")).json()[0]["title"] == "Roll back"


@pytest.mark.parametrize(
    "body, message",
    [({}, "Give at least one of status, progress, due_at."), ({"status": "sleeping"}, "is not a valid choice")],
)
def test_bad_task_updates_are_400(cast, body, message):
    task = services.task_create(fault=cast.fault, assignee=cast.handler, kind="recover", title="Roll back")
    response = client_for(cast.handler_user).patch(url(cast.fault, f"tasks/{task.pk}/"), body, format="json")
    assert response.status_code == 400
    assert message in str(response.json())


def test_an_invalid_task_transition_is_409(cast):
    task = services.task_create(fault=cast.fault, assignee=cast.handler, kind="recover", title="Roll back")
    services.task_update(task=task, status=Task.Status.DONE)
    response = client_for(cast.handler_user).patch(url(cast.fault, f"tasks/{task.pk}/"), {"status": "open"}, format="json")
    assert response.status_code == 409
    assert response.json() == {"detail": "A task that is done cannot become open.", "code": "invalid_transition"}


def test_a_task_for_someone_without_a_role_is_400(cast):
    body = {"assignee": f.person().pk, "kind": "recover", "title": "x"}
    response = client_for(cast.commander_user).post(url(cast.fault, "tasks/"), body, format="json")
    assert response.status_code == 400
    assert "assign him as an emergency handler first" in response.json()["detail"]


def test_handlers_propose_plans_and_add_notes_but_not_progress(cast):
    c = client_for(cast.handler_user)
    assert c.post(url(cast.fault, "plans/"), {"description": "Restart", "expected_impact": 3}, format="json").status_code == 201
    assert c.post(url(cast.fault, "updates/"), {"body": "DNS?", "kind": "note"}, format="json").status_code == 201
    response = c.post(url(cast.fault, "updates/"), {"body": "All good"}, format="json")
    assert response.status_code == 403
    assert client_for(cast.stakeholder).get(url(cast.fault, "updates/")).json()[0]["body"] == "DNS?"


def test_the_guardrail_answers_409_with_its_message_and_raising_the_level_clears_it(cast):
    c = client_for(cast.commander_user)
    plan = c.post(url(cast.fault, "plans/"), {"description": "Fail over", "expected_impact": "P1"}, format="json").json()
    response = c.post(url(cast.fault, f"plans/{plan['id']}/approve/"))
    assert response.status_code == 409
    assert response.json()["code"] == "plan_more_severe_than_fault"
    assert "Raise the fault to P1 first" in response.json()["detail"]
    assert c.post(url(cast.fault, "level/"), {"level": "P1", "reason": "fail-over"}, format="json").status_code == 200
    response = c.post(url(cast.fault, f"plans/{plan['id']}/approve/"))
    assert response.status_code == 200
    assert response.json()["status"] == "approved"
    assert c.post(url(cast.fault, f"plans/{plan['id']}/execute/")).json()["status"] == "executed"


def test_rejecting_a_plan_keeps_the_reason(cast):
    c = client_for(cast.commander_user)
    plan = c.post(url(cast.fault, "plans/"), {"description": "Reboot all", "expected_impact": "P3"}, format="json").json()
    response = c.post(url(cast.fault, f"plans/{plan['id']}/reject/"), {"reason": "too risky"}, format="json")
    assert response.json()["rejection_reason"] == "too risky"
    assert client_for(cast.handler_user).post(url(cast.fault, f"plans/{plan['id']}/reject/")).status_code == 403


@pytest.mark.parametrize(
    "tail, body, message",
    [
        ("assign/", {"person": 999999, "role": "commander"}, "Invalid pk"),
        ("assign/", {"person": "abc", "role": "commander"}, "Incorrect type"),
        ("assign/", {"role": "commander"}, "This field is required."),
        ("assign/", {"person": 1, "role": "king"}, "is not a valid choice"),
        ("level/", {"level": "high"}, "Level must be one of"),
        ("level/", {}, "This field is required."),
        ("plans/", {"description": "x", "expected_impact": 0}, "Level must be one of"),
        ("updates/", {"body": ""}, "may not be blank"),
        ("updates/", {"body": "x", "kind": "gossip"}, "is not a valid choice"),
        ("tasks/", {"assignee": 1, "kind": "x", "title": "t"}, "is not a valid choice"),
        ("tasks/", {"assignee": 1, "kind": "recover", "title": "t", "due_at": 5}, "Datetime has wrong format"),
    ],
)
def test_bad_action_input_is_400_with_a_message(cast, tail, body, message):
    response = client_for(cast.commander_user).post(url(cast.fault, tail), body, format="json")
    assert response.status_code == 400
    assert message in str(response.json())


def test_invalid_transitions_are_409(cast):
    c = client_for(cast.commander_user)
    response = c.post(url(cast.fault, "close/"))
    assert response.status_code == 409
    assert response.json()["detail"] == f"Fault #{cast.fault.pk} is declared; it can become closed only from recovered."
    c.post(url(cast.fault, "recovered/"))
    response = c.post(url(cast.fault, "mitigated/"))
    assert response.status_code == 409
    c.post(url(cast.fault, "close/"))
    response = c.post(url(cast.fault, "reopen/"), {"reason": "back again"}, format="json")
    assert response.json()["status"] == "declared"


def test_the_commander_assigns_a_new_commander_through_the_api(cast):
    newcomer = f.person("Wang Fang")
    response = client_for(cast.commander_user).post(
        url(cast.fault, "assign/"), {"person": newcomer.pk, "role": "commander"}, format="json"
    )
    assert response.status_code == 200
    commanders = [r["person"]["name"] for r in response.json()["roles"] if r["role"] == "commander"]
    assert commanders == ["Wang Fang"]
    assert cast.fault.roles.filter(role=RoleAssignment.Role.COMMANDER).count() == 2


# --- the schema -----------------------------------------------------------------------------


def test_the_openapi_schema_and_docs_are_served(cast):
    c = client_for(cast.stakeholder)
    schema = c.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    for path in [
        "/api/v1/faults/",
        "/api/v1/faults/{id}/timeline/",
        "/api/v1/faults/{id}/check-in/",
        "/api/v1/faults/{id}/tasks/{task_pk}/",
        "/api/v1/faults/{id}/plans/{plan_pk}/approve/",
        "/api/v1/faults/{id}/close/",
    ]:
        assert path in paths
    docs = c.get("/api/docs/")
    assert docs.status_code == 200
    assert b"swagger-ui" in docs.content
    assert b"cdn" not in docs.content.lower()


# --- the directory --------------------------------------------------------------------------


def test_businesses_and_people_are_listed_and_searchable(cast):
    f.business("Payments")
    c = client_for(cast.stakeholder)
    names = [b["name"] for b in c.get("/api/v1/businesses/?search=pay").json()["results"]]
    assert names == ["Payments"]
    people = [p["name"] for p in c.get("/api/v1/people/?search=zhang").json()["results"]]
    assert people == ["Zhang Wei"]
    assert client_for().get("/api/v1/people/").status_code == 401


@pytest.mark.parametrize(
    "tail, body, field",
    [
        ("level/", '{"level": 1e999}', "level"),
        ("level/", '{"level": 1.7}', "level"),
        ("level/", '{"level": "١"}', "level"),
        ("plans/", '{"description": "x", "expected_impact": 1e999}', "expected_impact"),
        ("assign/", '{"person": 1e999, "role": "emergency_handler"}', "person"),
        ("assign/", '{"person": 1.5, "role": "emergency_handler"}', "person"),
        ("assign/", '{"person": 99999999999999999999999, "role": "emergency_handler"}', "person"),
    ],
)
def test_numbers_that_are_not_whole_small_numbers_are_400_not_500(cast, tail, body, field):
    response = client_for(cast.commander_user).post(url(cast.fault, tail), body, content_type="application/json")
    assert response.status_code == 400
    assert field in response.json()


@pytest.mark.parametrize("path", ["/api/v1/faults/%C2%B2/", "/api/v1/faults/99999999999999999999999/"])
def test_odd_fault_ids_are_404(cast, path):
    assert client_for(cast.stakeholder).get(path).status_code == 404


def test_a_huge_after_is_400(cast):
    response = client_for(cast.stakeholder).get(url(cast.fault, "timeline/?after=" + "9" * 30))
    assert response.status_code == 400


def test_a_suspected_cause_found_later_is_added_by_the_commander(cast):
    payments = f.business("Payments")
    c = client_for(cast.commander_user)
    response = c.post(url(cast.fault, "suspects/"), {"business": payments.pk}, format="json")
    assert response.status_code == 200
    assert [b["name"] for b in response.json()["suspected_cause_businesses"]] == ["Payments"]
    again = c.post(url(cast.fault, "suspects/"), {"business": payments.pk}, format="json")
    assert again.status_code == 400
    assert again.json()["detail"] == "Payments is already a suspected cause."
    affected = c.post(url(cast.fault, "suspects/"), {"business": cast.fault.affected_business_id}, format="json")
    assert "is the affected business" in affected.json()["detail"]
    assert client_for(cast.handler_user).post(url(cast.fault, "suspects/"), {"business": payments.pk}, format="json").status_code == 403
    assert c.post(url(cast.fault, "suspects/"), {"business": 999999}, format="json").status_code == 400

from datetime import timedelta

import pytest

from incidents import events, services
from incidents.errors import GuardrailViolation, InvalidInput, InvalidTransition, NotAllowed
from incidents.models import Fault, Level, MitigationPlan, RoleAssignment, StatusUpdate, Task, TimelineEvent

from . import factories as f
from .factories import Cast

pytestmark = pytest.mark.django_db

Role = RoleAssignment.Role


@pytest.fixture
def cast():
    return Cast()


def kinds(fault):
    return list(fault.timeline.order_by("seq").values_list("kind", flat=True))


def events_of(fault):
    return TimelineEvent.objects.filter(fault=fault).count()


# --- declaration ----------------------------------------------------------------------------


def test_declaring_writes_the_fault_its_roles_and_one_event(clock):
    commander, handler = f.person("Zhang Wei"), f.person("Han Meimei")
    affected, suspect = f.business("Orders"), f.business("Payments")
    fault = f.fault(
        level=Level.P1, commander=commander, fault_handler=handler, affected=affected, suspects=[suspect, suspect]
    )
    assert fault.status == Fault.Status.DECLARED
    assert fault.declared_at == clock.now() == fault.detected_at
    assert list(fault.suspected_cause_businesses.all()) == [suspect]
    roles = {(a.role, a.person) for a in fault.roles.all()}
    assert roles == {(Role.COMMANDER, commander), (Role.FAULT_HANDLER, handler)}
    (event,) = fault.timeline.all()
    assert (event.seq, event.kind, event.actor_label) == (1, "fault.declared", "War Room")
    assert event.data["level"] == 1
    assert event.data["suspected_cause_businesses"] == [{"id": suspect.pk, "name": "Payments"}]
    assert fault.last_seq == 1


def test_declaring_refuses_a_blank_title_and_writes_nothing():
    with pytest.raises(InvalidInput, match="needs a title"):
        f.fault(title="   ")
    assert Fault.objects.count() == 0


def test_declaring_refuses_an_unknown_level():
    with pytest.raises(InvalidInput, match="Level must be one of P1, P2, P3, P4"):
        f.fault(level=7)


def test_declaring_refuses_a_detection_time_in_the_future(clock):
    with pytest.raises(InvalidInput, match="future"):
        f.fault(detected_at=clock.now() + timedelta(hours=1))


def test_only_users_allowed_to_declare_may_declare():
    with pytest.raises(NotAllowed):
        f.fault(actor=f.user("nobody", "incidents.view_fault"))
    fault = f.fault(actor=f.user("duty", "incidents.add_fault"))
    assert fault.declared_by.username == "duty"


# --- level ----------------------------------------------------------------------------------


def test_the_commander_raises_the_level_and_it_is_recorded(cast):
    services.fault_change_level(fault=cast.fault, level=Level.P1, reason="all regions", actor=cast.commander_user)
    cast.fault.refresh_from_db()
    assert cast.fault.level == Level.P1
    event = cast.fault.timeline.last()
    assert event.kind == "fault.level_changed"
    assert event.data == {"from": 2, "to": 1, "raised": True, "reason": "all regions"}
    assert event.actor_label == "Zhang Wei"


def test_changing_to_the_same_level_is_refused(cast):
    with pytest.raises(InvalidInput, match="already P2"):
        services.fault_change_level(fault=cast.fault, level=Level.P2, actor=cast.commander_user)


@pytest.mark.parametrize("who", ["handler_user", "stakeholder", "outsider"])
def test_only_the_commander_or_a_manager_changes_the_level(cast, who):
    before = events_of(cast.fault)
    with pytest.raises(NotAllowed, match="commander"):
        services.fault_change_level(fault=cast.fault, level=Level.P1, actor=getattr(cast, who))
    assert events_of(cast.fault) == before
    services.fault_change_level(fault=cast.fault, level=Level.P1, actor=cast.manager)


# --- roles ----------------------------------------------------------------------------------


def test_a_new_commander_replaces_the_old_one(cast):
    newcomer = f.person("Wang Fang")
    services.role_assign(fault=cast.fault, person=newcomer, role=Role.COMMANDER, actor=cast.manager)
    active = cast.fault.roles.filter(role=Role.COMMANDER, ended_at__isnull=True)
    assert [a.person for a in active] == [newcomer]
    assert cast.fault.roles.get(person=cast.commander).ended_at is not None
    event = cast.fault.timeline.last()
    assert event.data["replaced"] == {"id": cast.commander.pk, "name": "Zhang Wei"}
    # The replaced commander can no longer run the fault.
    with pytest.raises(NotAllowed):
        services.fault_change_level(fault=cast.fault, level=Level.P1, actor=cast.commander_user)


def test_assigning_someone_twice_to_the_same_role_is_refused(cast):
    with pytest.raises(InvalidInput, match="already emergency handler"):
        services.role_assign(fault=cast.fault, person=cast.handler, role=Role.EMERGENCY_HANDLER, actor=cast.manager)


def test_an_unknown_role_is_refused(cast):
    with pytest.raises(InvalidInput, match="Role must be one of"):
        services.role_assign(fault=cast.fault, person=f.person(), role="boss", actor=cast.manager)


def test_a_handler_cannot_assign_roles(cast):
    with pytest.raises(NotAllowed):
        services.role_assign(fault=cast.fault, person=f.person(), role=Role.EMERGENCY_HANDLER, actor=cast.handler_user)


# --- check-in -------------------------------------------------------------------------------


def test_checking_in_records_the_time_once(cast, clock):
    clock.advance(timedelta(minutes=3))
    services.role_check_in(fault=cast.fault, person=cast.handler, actor=cast.handler_user, via="api")
    cast.fault.refresh_from_db()
    assignment = cast.fault.roles.get(person=cast.handler)
    assert assignment.checked_in_at == clock.now() == cast.fault.first_check_in_at
    before = events_of(cast.fault)
    clock.advance(timedelta(minutes=1))
    services.role_check_in(fault=cast.fault, person=cast.handler, actor=cast.handler_user, via="card")
    assert events_of(cast.fault) == before
    assert cast.fault.roles.get(person=cast.handler).checked_in_at == assignment.checked_in_at


def test_the_first_check_in_time_is_kept_when_others_check_in_later(cast, clock):
    services.role_check_in(fault=cast.fault, person=cast.handler, actor=cast.handler_user)
    first = clock.now()
    clock.advance(timedelta(minutes=5))
    services.role_check_in(fault=cast.fault, person=cast.commander, actor=cast.commander_user)
    cast.fault.refresh_from_db()
    assert cast.fault.first_check_in_at == first


def test_a_handler_may_check_in_only_himself(cast):
    with pytest.raises(NotAllowed, match="only yourself"):
        services.role_check_in(fault=cast.fault, person=cast.commander, actor=cast.handler_user)
    services.role_check_in(fault=cast.fault, person=cast.handler, actor=cast.commander_user)


def test_someone_without_a_role_cannot_check_in(cast):
    with pytest.raises(InvalidInput, match="has no role"):
        services.role_check_in(fault=cast.fault, person=f.person("Stranger"), actor=cast.manager)


# --- tasks ----------------------------------------------------------------------------------


def test_a_task_is_due_within_the_levels_task_response_time(cast, clock):
    task = services.task_create(
        fault=cast.fault, assignee=cast.handler, kind=Task.Kind.INVESTIGATE, title="Find the cause",
        actor=cast.commander_user,
    )
    assert task.due_at == clock.now() + timedelta(minutes=30)  # P2's shipped task response time
    assert cast.fault.timeline.last().data["assignee"] == {"id": cast.handler.pk, "name": "Li Lei"}


def test_tasks_go_only_to_people_with_a_role(cast):
    with pytest.raises(InvalidInput, match="assign him as an emergency handler first"):
        services.task_create(
            fault=cast.fault, assignee=f.person(), kind=Task.Kind.RECOVER, title="x", actor=cast.commander_user
        )


def test_a_task_due_in_the_past_is_refused(cast, clock):
    with pytest.raises(InvalidInput, match="future"):
        services.task_create(
            fault=cast.fault, assignee=cast.handler, kind=Task.Kind.RECOVER, title="x",
            due_at=clock.now() - timedelta(minutes=1), actor=cast.commander_user,
        )


def test_an_unknown_task_kind_is_refused(cast):
    with pytest.raises(InvalidInput, match="kind"):
        services.task_create(fault=cast.fault, assignee=cast.handler, kind="dance", title="x", actor=cast.manager)


def test_a_handler_cannot_hand_out_tasks(cast):
    with pytest.raises(NotAllowed):
        services.task_create(
            fault=cast.fault, assignee=cast.handler, kind=Task.Kind.RECOVER, title="x", actor=cast.handler_user
        )


@pytest.fixture
def task(cast):
    return services.task_create(
        fault=cast.fault, assignee=cast.handler, kind=Task.Kind.RECOVER, title="Roll back", actor=cast.commander_user
    )


def test_progress_from_the_assignee_acknowledges_the_task(cast, task, clock):
    clock.advance(timedelta(minutes=2))
    task = services.task_update(task=task, progress="rolling back 30%", actor=cast.handler_user)
    assert (task.status, task.progress, task.acknowledged_at) == (Task.Status.ACKNOWLEDGED, "rolling back 30%", clock.now())
    event = cast.fault.timeline.last()
    assert event.data["status"] == {"from": "open", "to": "acknowledged"}


def test_a_done_task_stays_done(cast, task):
    services.task_update(task=task, status=Task.Status.DONE, actor=cast.handler_user)
    with pytest.raises(InvalidTransition, match="done cannot become acknowledged"):
        services.task_update(task=task, status=Task.Status.ACKNOWLEDGED, actor=cast.handler_user)


def test_only_the_assignee_or_commander_updates_a_task(cast, task):
    other = f.user("other", "incidents.view_fault")
    other_person = f.person("Other", other)
    services.role_assign(fault=cast.fault, person=other_person, role=Role.EMERGENCY_HANDLER, actor=cast.manager)
    with pytest.raises(NotAllowed, match="assignee"):
        services.task_update(task=task, progress="mine now", actor=other)
    services.task_update(task=task, progress="checked by commander", actor=cast.commander_user)


def test_only_the_commander_cancels_a_task_or_moves_its_due_time(cast, task, clock):
    with pytest.raises(NotAllowed, match="cancel"):
        services.task_update(task=task, status=Task.Status.CANCELLED, actor=cast.handler_user)
    with pytest.raises(NotAllowed, match="due time"):
        services.task_update(task=task, due_at=clock.now() + timedelta(hours=1), actor=cast.handler_user)
    services.task_update(task=task, status=Task.Status.CANCELLED, actor=cast.commander_user)


def test_an_update_that_changes_nothing_is_refused(cast, task):
    with pytest.raises(InvalidInput, match="Nothing to update"):
        services.task_update(task=task, progress="  ", actor=cast.handler_user)


# --- plans and the guardrail ----------------------------------------------------------------


def test_a_plan_more_severe_than_the_fault_cannot_be_approved(cast):
    plan = services.plan_propose(
        fault=cast.fault, description="Fail over every region", expected_impact=Level.P1, actor=cast.handler_user
    )
    before = events_of(cast.fault)
    with pytest.raises(GuardrailViolation) as refused:
        services.plan_approve(plan=plan, actor=cast.commander_user)
    assert "expected impact (P1) is more severe than the fault's level (P2)" in refused.value.message
    assert "Raise the fault to P1 first" in refused.value.message
    assert MitigationPlan.objects.get(pk=plan.pk).status == MitigationPlan.Status.PROPOSED
    assert events_of(cast.fault) == before


def test_raising_the_level_first_lets_the_plan_be_approved_and_both_are_recorded(cast):
    plan = services.plan_propose(fault=cast.fault, description="Fail over", expected_impact=Level.P1, actor=cast.handler_user)
    services.fault_change_level(fault=cast.fault, level=Level.P1, reason="for the fail-over", actor=cast.commander_user)
    plan = services.plan_approve(plan=plan, actor=cast.commander_user)
    assert plan.status == MitigationPlan.Status.APPROVED
    assert kinds(cast.fault)[-3:] == ["plan.proposed", "fault.level_changed", "plan.approved"]


def test_a_plan_as_severe_as_the_fault_or_milder_is_approved(cast):
    for impact in (Level.P2, Level.P3):
        plan = services.plan_propose(fault=cast.fault, description="Restart", expected_impact=impact, actor=cast.handler_user)
        assert services.plan_approve(plan=plan, actor=cast.commander_user).status == MitigationPlan.Status.APPROVED


def test_executing_is_guarded_too_when_the_level_was_lowered_after_approval(cast):
    plan = services.plan_propose(fault=cast.fault, description="Drain", expected_impact=Level.P2, actor=cast.handler_user)
    services.plan_approve(plan=plan, actor=cast.commander_user)
    services.fault_change_level(fault=cast.fault, level=Level.P3, actor=cast.commander_user)
    with pytest.raises(GuardrailViolation, match="Cannot execute"):
        services.plan_execute(plan=plan, actor=cast.commander_user)
    services.fault_change_level(fault=cast.fault, level=Level.P2, actor=cast.commander_user)
    assert services.plan_execute(plan=plan, actor=cast.commander_user).status == MitigationPlan.Status.EXECUTED


def test_plan_transitions(cast):
    plan = services.plan_propose(fault=cast.fault, description="Throttle", expected_impact=Level.P3, actor=cast.handler_user)
    with pytest.raises(InvalidTransition, match="execute a plan that is proposed"):
        services.plan_execute(plan=plan, actor=cast.commander_user)
    plan = services.plan_reject(plan=plan, reason="too slow", actor=cast.commander_user)
    assert (plan.status, plan.rejection_reason) == (MitigationPlan.Status.REJECTED, "too slow")
    with pytest.raises(InvalidTransition, match="approve a plan that is rejected"):
        services.plan_approve(plan=plan, actor=cast.commander_user)


def test_stakeholders_cannot_propose_and_handlers_cannot_approve(cast):
    with pytest.raises(NotAllowed):
        services.plan_propose(fault=cast.fault, description="x", expected_impact=Level.P3, actor=cast.stakeholder)
    plan = services.plan_propose(fault=cast.fault, description="x", expected_impact=Level.P3, actor=cast.handler_user)
    with pytest.raises(NotAllowed):
        services.plan_approve(plan=plan, actor=cast.handler_user)


def test_a_plan_needs_a_description(cast):
    with pytest.raises(InvalidInput, match="description"):
        services.plan_propose(fault=cast.fault, description="", expected_impact=Level.P3, actor=cast.handler_user)


# --- updates --------------------------------------------------------------------------------


def test_the_commander_posts_progress_and_handlers_add_notes(cast):
    services.status_update_post(fault=cast.fault, body="Rollback at 50%", actor=cast.commander_user)
    with pytest.raises(NotAllowed, match="troubleshooting notes"):
        services.status_update_post(fault=cast.fault, body="I think it's DNS", actor=cast.handler_user)
    services.status_update_post(
        fault=cast.fault, body="I think it's DNS", kind=StatusUpdate.Kind.NOTE, actor=cast.handler_user
    )
    with pytest.raises(NotAllowed):
        services.status_update_post(fault=cast.fault, body="hi", kind=StatusUpdate.Kind.NOTE, actor=cast.stakeholder)
    assert list(cast.fault.updates.values_list("kind", flat=True)) == ["progress", "note"]


def test_an_empty_update_is_refused(cast):
    with pytest.raises(InvalidInput, match="some text"):
        services.status_update_post(fault=cast.fault, body=" ", actor=cast.commander_user)


# --- status ---------------------------------------------------------------------------------


def test_a_fault_goes_mitigated_recovered_closed_with_each_time_recorded(cast, clock):
    c = cast.commander_user
    clock.advance(timedelta(minutes=10))
    services.fault_mark_mitigated(fault=cast.fault, actor=c)
    mitigated = clock.now()
    clock.advance(timedelta(minutes=10))
    services.fault_mark_recovered(fault=cast.fault, actor=c)
    clock.advance(timedelta(minutes=10))
    fault = services.fault_close(fault=cast.fault, actor=c)
    assert (fault.mitigated_at, fault.recovered_at, fault.closed_at) == (
        mitigated, mitigated + timedelta(minutes=10), mitigated + timedelta(minutes=20)
    )
    assert kinds(fault)[-3:] == ["fault.mitigated", "fault.recovered", "fault.closed"]


def test_recovering_straight_away_counts_as_mitigated_then(cast, clock):
    fault = services.fault_mark_recovered(fault=cast.fault, actor=cast.commander_user)
    assert fault.mitigated_at == fault.recovered_at == clock.now()


@pytest.mark.parametrize(
    "steps, refused, message",
    [
        ([], services.fault_close, "can become closed only from recovered"),
        ([services.fault_mark_mitigated], services.fault_mark_mitigated, "is mitigated; it can become mitigated only from declared"),
        ([services.fault_mark_recovered], services.fault_mark_mitigated, "only from declared"),
        ([services.fault_mark_recovered, services.fault_close], services.fault_mark_recovered, "is closed"),
        ([], services.fault_reopen, "can become declared only from recovered or closed"),
    ],
)
def test_invalid_status_transitions_are_refused(cast, steps, refused, message):
    for step in steps:
        step(fault=cast.fault, actor=cast.commander_user)
    before = events_of(cast.fault)
    with pytest.raises(InvalidTransition, match=message):
        refused(fault=cast.fault, actor=cast.commander_user)
    assert events_of(cast.fault) == before


def test_a_closed_fault_can_be_reopened_and_then_run_again(cast):
    services.fault_mark_recovered(fault=cast.fault, actor=cast.commander_user)
    services.fault_close(fault=cast.fault, actor=cast.commander_user)
    with pytest.raises(InvalidTransition, match="closed; reopen it first"):
        services.fault_change_level(fault=cast.fault, level=Level.P1, actor=cast.commander_user)
    fault = services.fault_reopen(fault=cast.fault, reason="errors are back", actor=cast.commander_user)
    assert (fault.status, fault.recovered_at, fault.closed_at) == (Fault.Status.DECLARED, None, None)
    assert fault.timeline.last().data == {"from": "closed", "to": "declared", "reason": "errors are back"}
    services.fault_change_level(fault=fault, level=Level.P1, actor=cast.commander_user)


def test_stakeholders_cannot_change_the_status(cast):
    with pytest.raises(NotAllowed):
        services.fault_mark_recovered(fault=cast.fault, actor=cast.stakeholder)


# --- the timeline ---------------------------------------------------------------------------


def test_every_service_writes_exactly_one_event_with_the_next_seq(cast, clock):
    c = cast.commander_user
    calls = [
        lambda: services.fault_change_level(fault=cast.fault, level=Level.P1, actor=c),
        lambda: services.role_assign(fault=cast.fault, person=f.person(), role=Role.EMERGENCY_HANDLER, actor=c),
        lambda: services.role_check_in(fault=cast.fault, person=cast.handler, actor=cast.handler_user),
        lambda: services.task_create(fault=cast.fault, assignee=cast.handler, kind="recover", title="t", actor=c),
        lambda: services.task_update(task=cast.fault.tasks.get(), progress="p", actor=cast.handler_user),
        lambda: services.plan_propose(fault=cast.fault, description="d", expected_impact=1, actor=c),
        lambda: services.plan_approve(plan=cast.fault.plans.get(), actor=c),
        lambda: services.plan_execute(plan=cast.fault.plans.get(), actor=c),
        lambda: services.plan_reject(
            plan=services.plan_propose(fault=cast.fault, description="e", expected_impact=2, actor=c), actor=c
        ),
        lambda: services.status_update_post(fault=cast.fault, body="b", actor=c),
        lambda: services.fault_mark_mitigated(fault=cast.fault, actor=c),
        lambda: services.fault_mark_recovered(fault=cast.fault, actor=c),
        lambda: services.fault_close(fault=cast.fault, actor=c),
        lambda: services.fault_reopen(fault=cast.fault, actor=c),
    ]
    for call in calls:
        before = events_of(cast.fault)
        call()
        # plan_reject's call proposes first: two services, two events.
        assert events_of(cast.fault) - before in (1, 2)
    seqs = list(cast.fault.timeline.order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, len(seqs) + 1))
    cast.fault.refresh_from_db()
    assert cast.fault.last_seq == seqs[-1]


def test_timeline_events_cannot_be_rewritten(cast):
    event = cast.fault.timeline.first()
    event.kind = "something.else"
    with pytest.raises(ValueError, match="append-only"):
        event.save()


def test_after_commit_hooks_see_the_event_only_once_committed(cast, django_capture_on_commit_callbacks):
    seen = []
    events.subscribe(seen.append)
    try:
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            services.status_update_post(fault=cast.fault, body="b", actor=cast.commander_user)
        assert seen == []
        for callback in callbacks:
            callback()
        assert [e.kind for e in seen] == ["update.posted"]
    finally:
        events.unsubscribe(seen.append)


def test_a_failing_in_transaction_hook_rolls_the_whole_change_back(cast):
    def refuse(event):
        raise RuntimeError("outbox unavailable")

    events.subscribe(refuse, in_transaction=True)
    before = events_of(cast.fault)
    try:
        with pytest.raises(RuntimeError):
            services.fault_change_level(fault=cast.fault, level=Level.P1, actor=cast.commander_user)
    finally:
        events.unsubscribe(refuse)
    cast.fault.refresh_from_db()
    assert cast.fault.level == Level.P2
    assert events_of(cast.fault) == before

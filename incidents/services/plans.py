"""Mitigation plans: proposed by anyone with a role, decided and executed by the commander.

The guardrail: a plan whose expected impact is more severe than the fault's level is
neither approved nor executed; the level must be raised first, which the timeline records.
"""

from django.db import transaction
from django.utils import timezone

from .. import permissions
from ..errors import GuardrailViolation, InvalidInput, InvalidTransition
from ..event_types import EventKind
from ..models import Fault, MitigationPlan
from ._common import (
    _level,
    _lock,
    _record,
    _require,
    _require_manager,
    _require_not_closed,
    _require_open,
    _user,
)


def _guardrail(plan: MitigationPlan, fault: Fault, doing: str) -> None:
    if plan.expected_impact < fault.level:
        raise GuardrailViolation(
            f"Cannot {doing} this plan: its expected impact ({plan.get_expected_impact_display()}) is more severe "
            f"than the fault's level ({fault.get_level_display()}). Raise the fault to "
            f"{plan.get_expected_impact_display()} first; the level change is recorded on the timeline."
        )


def _locked_plan(plan: MitigationPlan) -> tuple[MitigationPlan, Fault]:
    fault = _lock(plan.fault)
    plan = MitigationPlan.objects.get(pk=plan.pk)
    plan.fault = fault
    return plan, fault


def _plan_data(plan: MitigationPlan, **extra) -> dict:
    return {"plan": plan.pk, "description": plan.description, "expected_impact": plan.expected_impact, **extra}


def _require_plan_status(plan: MitigationPlan, status: str, doing: str) -> None:
    if plan.status != status:
        raise InvalidTransition(f"Cannot {doing} a plan that is {plan.get_status_display().lower()}.")


@transaction.atomic
def plan_propose(*, fault: Fault, description: str, expected_impact: int, actor=None) -> MitigationPlan:
    fault = _lock(fault)
    if actor is not None:
        _require(permissions.is_participant(actor, fault), "Only people with a role in this fault may propose plans.")
    _require_open(fault, "propose a plan")
    description = (description or "").strip()
    if not description:
        raise InvalidInput("A plan needs a description.")
    plan = MitigationPlan.objects.create(
        fault=fault,
        description=description,
        expected_impact=_level(expected_impact),
        proposed_by=_user(actor),
        proposed_at=timezone.now(),
    )
    _record(fault, EventKind.PLAN_PROPOSED, actor=actor, data=_plan_data(plan))
    return plan


@transaction.atomic
def plan_approve(*, plan: MitigationPlan, actor=None) -> MitigationPlan:
    plan, fault = _locked_plan(plan)
    _require_manager(actor, fault)
    _require_open(fault, "approve a plan")
    _require_plan_status(plan, MitigationPlan.Status.PROPOSED, "approve")
    _guardrail(plan, fault, "approve")
    plan.status = MitigationPlan.Status.APPROVED
    plan.decided_by = _user(actor)
    plan.decided_at = timezone.now()
    plan.save()
    _record(fault, EventKind.PLAN_APPROVED, actor=actor, data=_plan_data(plan, fault_level=fault.level))
    return plan


@transaction.atomic
def plan_reject(*, plan: MitigationPlan, reason: str = "", actor=None) -> MitigationPlan:
    plan, fault = _locked_plan(plan)
    _require_manager(actor, fault)
    _require_not_closed(fault)
    _require_plan_status(plan, MitigationPlan.Status.PROPOSED, "reject")
    plan.status = MitigationPlan.Status.REJECTED
    plan.decided_by = _user(actor)
    plan.decided_at = timezone.now()
    plan.rejection_reason = reason or ""
    plan.save()
    _record(fault, EventKind.PLAN_REJECTED, actor=actor, data=_plan_data(plan, reason=plan.rejection_reason))
    return plan


@transaction.atomic
def plan_execute(*, plan: MitigationPlan, actor=None) -> MitigationPlan:
    plan, fault = _locked_plan(plan)
    _require_manager(actor, fault)
    _require_open(fault, "execute a plan")
    _require_plan_status(plan, MitigationPlan.Status.APPROVED, "execute")
    # The level may have been lowered since approval; the guardrail holds at execution too.
    _guardrail(plan, fault, "execute")
    plan.status = MitigationPlan.Status.EXECUTED
    plan.executed_at = timezone.now()
    plan.save()
    _record(fault, EventKind.PLAN_EXECUTED, actor=actor, data=_plan_data(plan))
    return plan

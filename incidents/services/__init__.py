"""Every change to a fault goes through here.

Each service runs in one transaction, locks the fault's row, writes its rows and exactly
one timeline event (with the next `seq` of that fault), and leaves everything that
reaches the outside world (the live page, notifications) to after-commit hooks.

`actor` is the user who asked, or None when the product itself acts (a Celery task, an
alert). Services check permissions themselves so that every entry point — API, page,
socket, admin, task — gets the same answer.

Callers use this package, never its modules: `from incidents import services`, then
`services.fault_declare(...)`. One module per noun:

- faults: declare, level, status (mitigated, recovered, closed, reopened), suspects
- roles: assign, check in
- tasks, plans (with the severity guardrail), updates (progress and notes)
- conferences: asked for by the commander, started by the notifications app
- deliveries, sla, providers: what the notifications app reports back onto the timeline
"""

from .conferences import conference_request, conference_started
from .deliveries import delivery_outcome_record
from .faults import (
    fault_change_level,
    fault_close,
    fault_declare,
    fault_mark_mitigated,
    fault_mark_recovered,
    fault_monitoring_cleared,
    fault_reopen,
    fault_suspect_add,
)
from .plans import plan_approve, plan_execute, plan_propose, plan_reject
from .providers import provider_state_record
from .roles import role_assign, role_check_in
from .sla import sla_breach_record, sla_reminder_record
from .tasks import task_create, task_update
from .updates import status_update_post

__all__ = [
    "conference_request",
    "conference_started",
    "delivery_outcome_record",
    "fault_change_level",
    "fault_close",
    "fault_declare",
    "fault_mark_mitigated",
    "fault_mark_recovered",
    "fault_monitoring_cleared",
    "fault_reopen",
    "fault_suspect_add",
    "plan_approve",
    "plan_execute",
    "plan_propose",
    "plan_reject",
    "provider_state_record",
    "role_assign",
    "role_check_in",
    "sla_breach_record",
    "sla_reminder_record",
    "status_update_post",
    "task_create",
    "task_update",
]

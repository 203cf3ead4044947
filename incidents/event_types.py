"""Every kind of timeline event, named once, with the data it carries.

A service records exactly one event per change (`incidents.services`); the live page,
the timeline API and the notifications app read `TimelineEvent.kind` against these names.
`EventKind` members are strings, so `event.kind == EventKind.FAULT_DECLARED` holds for a
row read back from the database.

Data shared by many kinds: a person is `{"id", "name"}`; a business is `{"id", "name"}`.
"""

from enum import StrEnum


class EventKind(StrEnum):
    # {"title", "level", "impact", "affected_business", "suspected_cause_businesses": [...],
    #  "roles": [{"role", "person", "selection"}], "unfilled_roles": [{"role", "selection"}],
    #  "reason": why, when not declared by hand (the alert and level rule; suspects and why)}
    # "selection" is {"given": true} when the declarer named the person, else how the roster
    # chose: {"rule", "chosen", "fallbacks": [each candidate skipped, and why]}
    FAULT_DECLARED = "fault.declared"
    # {"from", "to", "raised": true when the new level is more severe, "reason"}
    FAULT_LEVEL_CHANGED = "fault.level_changed"
    # {"from", "to"} — the status before and after; a recovery also carries "summary", the
    # recovery metrics computed in the same transaction (`incidents.metrics.summarize`)
    FAULT_MITIGATED = "fault.mitigated"
    FAULT_RECOVERED = "fault.recovered"
    FAULT_CLOSED = "fault.closed"
    # {"from", "to", "reason"}
    FAULT_REOPENED = "fault.reopened"
    # {"business", "reason": why it is suspected, or ""}
    FAULT_SUSPECT_ADDED = "fault.suspect_added"
    # {"role", "person", "replaced": the commander he replaces, or None}
    ROLE_ASSIGNED = "role.assigned"
    # {"person", "roles": [those checked in to now], "via": "api" | "web" | "card"}
    ROLE_CHECKED_IN = "role.checked_in"
    # {"task", "title", "kind", "assignee", "due_at"}
    TASK_CREATED = "task.created"
    # {"task", "title", "assignee", and each changed field: "status": {"from", "to"},
    #  "progress", "due_at"}
    TASK_UPDATED = "task.updated"
    # {"plan", "description", "expected_impact"} (+ "fault_level" when approved,
    #  "reason" when rejected)
    PLAN_PROPOSED = "plan.proposed"
    PLAN_APPROVED = "plan.approved"
    PLAN_REJECTED = "plan.rejected"
    PLAN_EXECUTED = "plan.executed"
    # {"update", "kind": "progress" | "note", "body"}
    UPDATE_POSTED = "update.posted"
    # {"text", "status", "person": person or None, ...}: what became of one message (sent,
    # delivered, retrying, failed, cancelled, ...), with its "delivery", "channel",
    # "transport" and "attempt"; pending messages cancelled together carry "count" and
    # "reason" instead, and a person left with no way to be paged carries "page"
    DELIVERY_OUTCOME = "delivery.outcome"
    # {"what": "check_in" | "task_response" | "progress_update" | "notify", "text", ...}:
    # the rest says whom it concerns and who was reminded, re-paged or told
    SLA_REMINDER = "sla.reminder"
    SLA_BREACHED = "sla.breached"
    # {"requested_by": person, or None when no person asked (the product, an account with no person)}
    CONFERENCE_REQUESTED = "conference.requested"
    # {"url", "conference", "room_code", "phone_numbers", "members", "transport"}
    CONFERENCE_STARTED = "conference.started"
    # {"text", "transport", "since", "failures"}: a provider fails for everyone; nobody is
    # escalated or replaced for the silence it causes
    PROVIDER_OUTAGE = "provider.outage"
    # {"text", "transport", "since", "until", "seconds"}: the provider answers again
    PROVIDER_RECOVERED = "provider.recovered"
    # {"alerts": how many}: the monitoring that raised the fault reports all of them resolved;
    # the commander is asked whether the fault is recovered. The actor is the integration.
    MONITORING_CLEARED = "monitoring.cleared"

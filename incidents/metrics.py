"""Recovery metrics: how fast each stage of the response happened, and which SLAs held.

Every duration is in seconds. Stage times are measured from detection (when the
exception started hurting), as MTTx usually are; SLA checks are measured from the moment
the obligation started (declaration, assignment, task creation).

- notify:   the first message that reached someone (a delivery outcome "sent"/"delivered")
- check in: the first check-in of anyone with a role
- engage:   the first time an emergency handler had his hands on the problem — a task
            acknowledged or progress reported
- mitigate, recover: the fault's own timestamps
"""

from datetime import datetime, timedelta

from django.utils.translation import pgettext

from .event_types import EventKind
from .models import Fault, RecoverySummary, SLAPolicy, StatusUpdate

REACHED = ("sent", "delivered", "answered")


def _seconds(later: datetime | None, earlier: datetime | None) -> float | None:
    if later is None or earlier is None:
        return None
    return round((later - earlier).total_seconds(), 3)


def _verdict(done_at: datetime | None, start: datetime, within: timedelta, now: datetime) -> str:
    if done_at is not None:
        return "met" if done_at - start <= within else "late"
    return "missed" if now - start > within else "pending"


def summarize(*, fault: Fault, at: datetime) -> dict:
    # The row, not `selectors.sla_for`: SLAs are judged only against what an admin has set
    # for the level; without a row the summary keeps its times and gives no verdicts.
    sla = SLAPolicy.objects.filter(level=fault.level).first()
    timeline = list(fault.timeline.order_by("seq"))
    reached = [
        e.created_at for e in timeline if e.kind == EventKind.DELIVERY_OUTCOME and e.data.get("status") in REACHED
    ]
    notified_at = min(reached) if reached else None
    tasks = list(fault.tasks.select_related("assignee"))
    engaged = [t.acknowledged_at for t in tasks if t.acknowledged_at is not None]
    engaged_at = min(engaged) if engaged else None
    times = {
        "declare": _seconds(fault.declared_at, fault.detected_at),
        "notify": _seconds(notified_at, fault.detected_at),
        "check_in": _seconds(fault.first_check_in_at, fault.detected_at),
        "engage": _seconds(engaged_at, fault.detected_at),
        "mitigate": _seconds(fault.mitigated_at, fault.detected_at),
        "recover": _seconds(fault.recovered_at, fault.detected_at),
    }

    roles, task_rows, messages, progress = [], [], {}, {}
    if sla is not None:
        for a in fault.roles.select_related("person"):
            roles.append(
                {
                    "person": a.person.name,
                    "role": a.role,
                    "check_in_after": _seconds(a.checked_in_at, a.assigned_at),
                    "within": sla.check_in_within.total_seconds(),
                    "verdict": _verdict(a.checked_in_at, a.assigned_at, sla.check_in_within, a.ended_at or at),
                }
            )
        for t in tasks:
            task_rows.append(
                {
                    "task": t.title,
                    "assignee": t.assignee.name,
                    "response_after": _seconds(t.acknowledged_at, t.created_at),
                    "within": sla.task_response_within.total_seconds(),
                    "verdict": _verdict(t.acknowledged_at, t.created_at, sla.task_response_within, at),
                }
            )
        messages = {
            "first_reached_after": _seconds(notified_at, fault.declared_at),
            "within": sla.notify_within.total_seconds(),
            "verdict": _verdict(notified_at, fault.declared_at, sla.notify_within, at),
        }
        posted = list(
            fault.updates.filter(kind=StatusUpdate.Kind.PROGRESS).order_by("posted_at").values_list("posted_at", flat=True)
        )
        marks = [fault.declared_at, *posted, at]
        longest = max((b - a for a, b in zip(marks, marks[1:])), default=timedelta(0))
        progress = {
            "updates": len(posted),
            "longest_gap": longest.total_seconds(),
            "every": sla.progress_update_every.total_seconds(),
            "verdict": "met" if longest <= sla.progress_update_every else "missed",
        }

    outcomes: dict[str, int] = {}
    for e in timeline:
        if e.kind == EventKind.DELIVERY_OUTCOME and e.data.get("status"):
            outcomes[e.data["status"]] = outcomes.get(e.data["status"], 0) + 1

    verdicts = [r["verdict"] for r in roles] + [t["verdict"] for t in task_rows]
    verdicts += [x["verdict"] for x in (messages, progress) if x]
    judged = [v for v in verdicts if v != "pending"]
    return {
        "level": fault.level,
        "times": times,
        "sla": {"roles": roles, "tasks": task_rows, "notify": messages, "progress": progress},
        "deliveries": outcomes,
        "sla_met": judged.count("met"),
        "sla_total": len(judged),
    }


def summary_store(*, fault: Fault, at: datetime) -> RecoverySummary:
    """Compute and keep the summary; called by the recovery service inside its transaction."""
    data = summarize(fault=fault, at=at)
    summary, _ = RecoverySummary.objects.update_or_create(
        fault=fault,
        defaults={
            "computed_at": at,
            "level": fault.level,
            **{f"time_to_{k}": v for k, v in data["times"].items()},
            "sla_met": data["sla_met"],
            "sla_total": data["sla_total"],
            "data": data,
        },
    )
    return summary


def format_duration(seconds: float | None) -> str:
    """A duration as people say it, in the active language ("2m 05s", "2分05秒")."""
    if seconds is None:
        return "—"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    values = {"h": hours, "m": minutes, "s": secs}
    if hours:
        return pgettext("duration", "%(h)dh %(m)02dm") % values
    if minutes:
        return pgettext("duration", "%(m)dm %(s)02ds") % values
    return pgettext("duration", "%(s)ds") % values

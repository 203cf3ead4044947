"""The recovery metrics summary, ready to show: durations formatted, verdicts named."""

from dataclasses import dataclass

from django.utils.translation import gettext as _

from incidents.metrics import format_duration
from incidents.models import Fault, RecoverySummary

from ..event_text import role_label

VERDICTS = {"met", "late", "missed", "pending"}


@dataclass
class SummaryView:
    summary: RecoverySummary
    stages: list[tuple[str, str]]
    roles: list[dict]
    tasks: list[dict]
    notify: dict | None
    progress: dict | None


def summary_view(fault: Fault) -> SummaryView | None:
    """The metrics summary, once the fault has recovered (kept as computed at recovery)."""
    if fault.status not in (Fault.Status.RECOVERED, Fault.Status.CLOSED):
        return None
    summary = RecoverySummary.objects.filter(fault=fault).first()
    if summary is None:
        return None
    data = summary.data or {}
    times = data.get("times") or {}
    stage_names = [
        ("declare", _("Declare")),
        ("notify", _("Notify")),
        ("check_in", _("Check in")),
        ("engage", _("Engage")),
        ("mitigate", _("Mitigate")),
        ("recover", _("Recover")),
    ]
    sla = data.get("sla") or {}
    roles = [
        {
            "person": r.get("person", ""),
            "role": role_label(r.get("role")).lower(),
            "after": format_duration(r.get("check_in_after")),
            "within": format_duration(r.get("within")),
            **_verdict(r),
        }
        for r in sla.get("roles") or []
    ]
    tasks = [
        {
            "task": t.get("task", ""),
            "assignee": t.get("assignee", ""),
            "after": format_duration(t.get("response_after")),
            "within": format_duration(t.get("within")),
            **_verdict(t),
        }
        for t in sla.get("tasks") or []
    ]
    notify = sla.get("notify") or None
    if notify:
        notify = {
            "after": format_duration(notify.get("first_reached_after")),
            "within": format_duration(notify.get("within")),
            **_verdict(notify),
        }
    progress = sla.get("progress") or None
    if progress:
        progress = {
            "updates": progress.get("updates", 0),
            "longest_gap": format_duration(progress.get("longest_gap")),
            "every": format_duration(progress.get("every")),
            **_verdict(progress),
        }
    return SummaryView(
        summary=summary,
        stages=[(label, format_duration(times.get(key))) for key, label in stage_names],
        roles=roles,
        tasks=tasks,
        notify=notify,
        progress=progress,
    )


def _verdict(row: dict) -> dict:
    # The verdict names a CSS class on the page: anything unknown is shown as pending.
    v = row.get("verdict", "")
    return {"verdict": v if v in VERDICTS else "pending", "verdict_label": _verdict_label(v)}


def _verdict_label(verdict: str) -> str:
    return {"met": _("met"), "late": _("late"), "missed": _("missed"), "pending": _("pending")}.get(verdict, verdict)

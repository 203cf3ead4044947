"""What people read in their messages, in their own language.

A message to a person is written in his preferred language (`Person.language`); a message
to a group in NOTIFY_GROUP_LANGUAGE. Timeline records stay as data (the page renders them
in the reader's language); only what leaves the product is worded here.
"""

from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from incidents.models import Fault, RoleAssignment, Task

Role = RoleAssignment.Role


def war_room_url(fault: Fault) -> str:
    return f"{settings.SITE_URL}/faults/{fault.pk}/"


def headline(fault: Fault) -> str:
    return f"{fault.get_level_display()} #{fault.pk} {fault.title}"


def group_language() -> str:
    return settings.NOTIFY_GROUP_LANGUAGE


def _roles(codes) -> str:
    # Lower case inside a sentence ("You are commander of …"); a no-op for Chinese.
    labels = [str(Role(c).label).lower() for c in codes if c in Role.values]
    return _(" and ").join(labels)


def page(fault: Fault, *, language: str, roles, again: bool) -> tuple[str, str]:
    """Subject and body of a page (call, SMS, DING) asking someone to check in."""
    with translation.override(language):
        values = {
            "headline": headline(fault),
            "roles": _roles(roles) or _("an emergency contact"),
            "impact": fault.impact or _("see the war room"),
            "url": war_room_url(fault),
        }
        body = _("You are %(roles)s of %(headline)s. Impact: %(impact)s. Check in: %(url)s") % values
        if again:
            body = _("Reminder: you have not checked in yet. ") + body
        return headline(fault), body


def escalation(fault: Fault, *, language: str, absent: str, roles, minutes: int) -> tuple[str, str]:
    with translation.override(language):
        values = {
            "absent": absent,
            "roles": _roles(roles) or _("an emergency contact"),
            "headline": headline(fault),
            "minutes": minutes,
            "url": war_room_url(fault),
        }
        return (
            _("Escalation: %(headline)s") % values,
            _("%(absent)s (%(roles)s) has not checked in to %(headline)s for %(minutes)s min. Please step in: %(url)s")
            % values,
        )


def notification(fault: Fault, *, language: str, progress: str | None, final: bool) -> tuple[str, str]:
    """The impact-and-progress message to a business's recipients and groups."""
    with translation.override(language):
        status = str(Fault.Status.RECOVERED.label if final else fault.get_status_display()).lower()
        values = {"level": fault.get_level_display(), "fault": fault.pk, "title": fault.title, "status": status}
        subject = _("[%(level)s] #%(fault)s %(title)s: %(status)s") % values
        lines = [
            f"### {subject}",
            _("Impact: %(impact)s") % {"impact": fault.impact or _("not described yet")},
            _("Affected: %(business)s") % {"business": fault.affected_business.name},
            _("Progress: %(progress)s") % {"progress": progress or _("no progress update yet")},
            _("War room: %(url)s") % {"url": war_room_url(fault)},
        ]
        return subject, "\n\n".join(lines)


def progress_due(fault: Fault, *, language: str, minutes: int) -> tuple[str, str]:
    with translation.override(language):
        values = {"headline": headline(fault), "minutes": minutes, "url": war_room_url(fault)}
        return (
            _("Progress update due: %(headline)s") % values,
            _("No progress update for %(minutes)s min on %(headline)s. Post one: %(url)s") % values,
        )


def task_waiting(fault: Fault, task: Task, *, language: str) -> tuple[str, str]:
    with translation.override(language):
        values = {"task": task.title, "headline": headline(fault), "url": war_room_url(fault)}
        return (
            _("Task not acknowledged: %(task)s") % values,
            _("Your task “%(task)s” on %(headline)s is waiting for you. Acknowledge it: %(url)s") % values,
        )


def task_unanswered(fault: Fault, task: Task, *, language: str, assignee: str) -> tuple[str, str]:
    with translation.override(language):
        values = {"task": task.title, "headline": headline(fault), "url": war_room_url(fault), "assignee": assignee}
        return (
            _("Task unanswered: %(task)s") % values,
            _("%(assignee)s has not acknowledged “%(task)s” on %(headline)s. %(url)s") % values,
        )


def alerts_resolved(event) -> str:
    count = event.data.get("alerts") or 1
    return ngettext("%(source)s: the alert resolved", "%(source)s: all %(count)s alerts resolved", count) % {
        "source": event.actor_label, "count": count,
    }


def monitoring_cleared(fault: Fault, event, *, language: str) -> tuple[str, str]:
    with translation.override(language):
        values = {"headline": headline(fault), "url": war_room_url(fault), "text": alerts_resolved(event)}
        return (
            _("All clear from monitoring: %(headline)s") % values,
            _("%(text)s on %(headline)s. If the fault is recovered, mark it recovered: %(url)s") % values,
        )


def card_status(fault: Fault, *, language: str) -> str:
    with translation.override(language):
        return str(fault.get_status_display())


# --- progress posted to the group ----------------------------------------------------------


def _level(e):
    values = {
        "from": f"P{e.data.get('from')}",
        "to": f"P{e.data.get('to')}",
        "reason": f" — {e.data['reason']}" if e.data.get("reason") else "",
    }
    if e.data.get("raised"):
        return _("Level raised from %(from)s to %(to)s%(reason)s") % values
    return _("Level lowered from %(from)s to %(to)s%(reason)s") % values


def _role(e):
    values = {"person": e.data["person"]["name"], "role": _roles([e.data.get("role")]) or e.data.get("role")}
    if e.data.get("replaced"):
        values["replaced"] = e.data["replaced"]["name"]
        return _("%(person)s is now %(role)s (replacing %(replaced)s)") % values
    return _("%(person)s is now %(role)s") % values


def _task_updated(e):
    parts = []
    if e.data.get("status"):
        to = e.data["status"]["to"]
        status = str(Task.Status(to).label).lower() if to in Task.Status.values else to
        parts.append(_("now %(status)s") % {"status": status})
    if e.data.get("progress"):
        parts.append(_("progress: %(progress)s") % {"progress": e.data["progress"]})
    if e.data.get("due_at"):
        parts.append(_("due %(due)s") % {"due": e.data["due_at"]})
    values = {"task": e.data.get("title"), "assignee": e.data["assignee"]["name"], "parts": "; ".join(parts)}
    return _("Task “%(task)s” (%(assignee)s): %(parts)s") % values


def _update(e):
    if e.data.get("kind") == "progress":
        return _("Progress: %(body)s") % {"body": e.data.get("body")}
    return _("Note: %(body)s") % {"body": e.data.get("body")}


SYNC = {
    "fault.level_changed": _level,
    "role.assigned": _role,
    "task.created": lambda e: _("New task for %(assignee)s: %(task)s (due %(due)s)")
    % {"assignee": e.data["assignee"]["name"], "task": e.data.get("title"), "due": e.data.get("due_at")},
    "task.updated": _task_updated,
    "plan.approved": lambda e: _("Mitigation plan approved: %(plan)s (expected impact P%(impact)s)")
    % {"plan": e.data.get("description"), "impact": e.data.get("expected_impact")},
    "update.posted": _update,
    "fault.mitigated": lambda e: _("The fault is mitigated"),
    "fault.recovered": lambda e: _("The fault is recovered"),
    "fault.suspect_added": lambda e: _("%(business)s is now a suspected cause") % {"business": e.data["business"]["name"]},
    "conference.started": lambda e: _("Video conference: %(url)s") % {"url": e.data.get("url")},
    "monitoring.cleared": lambda e: _("%(text)s. Commander: mark the fault recovered when it is.")
    % {"text": alerts_resolved(e)},
}


def sync(event, fault: Fault) -> tuple[str, str]:
    """Title and markdown of the group message for one timeline event."""
    with translation.override(group_language()):
        title = headline(fault)[:60]
        line = SYNC[event.kind](event)
        link = _("war room")
        text = f"### {title}\n\n{line}\n\n— {event.actor_label} · [{link}]({war_room_url(fault)})"
        return title, text

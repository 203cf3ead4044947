"""Timeline sentences: one line of plain words for each timeline event, in the reader's language.

The page renders its timeline with these, and the socket sends each live event with its
sentence (`with_text`), so the page and its live updates say the same thing in the same
words. This module only reads an event's own data; it looks nothing up.
"""

from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from incidents.event_types import EventKind
from incidents.models import Fault, Level, RoleAssignment, StatusUpdate, Task
from notifications.outbox import outages
from notifications.models import Channel, Delivery

# The label services give the product itself when it acts (a task, an alert); shown translated.
SYSTEM_ACTOR = "War Room"

FAULT_STATUS_CHANGES = (EventKind.FAULT_MITIGATED, EventKind.FAULT_RECOVERED, EventKind.FAULT_CLOSED)


def with_text(message: dict) -> dict:
    """A timeline event as the socket sends it, with its sentence."""
    return {**message, "text": event_text(message)}


def event_text(message: dict) -> str:
    """One sentence for a timeline event, in the active language."""
    kind, d, actor = message["kind"], message.get("data") or {}, message.get("actor") or ""
    if actor == SYSTEM_ACTOR:
        actor = _("War Room")
    if kind == EventKind.FAULT_DECLARED:
        return _("%(actor)s declared the fault at %(level)s: %(title)s") % {
            "actor": actor,
            "level": level_label(d.get("level")),
            "title": d.get("title", ""),
        } + _reason(d)
    if kind == EventKind.FAULT_LEVEL_CHANGED:
        text = (
            _("%(actor)s raised the level from %(from)s to %(to)s")
            if d.get("raised")
            else _("%(actor)s lowered the level from %(from)s to %(to)s")
        ) % {"actor": actor, "from": level_label(d.get("from")), "to": level_label(d.get("to"))}
        return text + _reason(d)
    if kind in FAULT_STATUS_CHANGES:
        return _("%(actor)s marked the fault %(status)s") % {"actor": actor, "status": _status(d.get("to")).lower()}
    if kind == EventKind.FAULT_REOPENED:
        return _("%(actor)s reopened the fault") % {"actor": actor} + _reason(d)
    if kind == EventKind.ROLE_ASSIGNED:
        text = _("%(actor)s assigned %(person)s as %(role)s") % {
            "actor": actor,
            "person": _name(d.get("person")),
            "role": role_label(d.get("role")).lower(),
        }
        if d.get("replaced"):
            text += _(", replacing %(person)s") % {"person": _name(d["replaced"])}
        return text
    if kind == EventKind.ROLE_CHECKED_IN:
        return _("%(person)s checked in") % {"person": _name(d.get("person"))}
    if kind == EventKind.TASK_CREATED:
        return _("%(actor)s gave %(person)s a task: %(title)s") % {
            "actor": actor,
            "person": _name(d.get("assignee")),
            "title": d.get("title", ""),
        }
    if kind == EventKind.TASK_UPDATED:
        return _task_updated_text(actor, d)
    if kind == EventKind.PLAN_PROPOSED:
        return _("%(actor)s proposed a plan (expected impact %(impact)s): %(description)s") % {
            "actor": actor,
            "impact": level_label(d.get("expected_impact")),
            "description": d.get("description", ""),
        }
    if kind == EventKind.PLAN_APPROVED:
        return _("%(actor)s approved the plan: %(description)s") % {"actor": actor, "description": d.get("description", "")}
    if kind == EventKind.PLAN_REJECTED:
        text = _("%(actor)s rejected the plan: %(description)s") % {"actor": actor, "description": d.get("description", "")}
        return text + _reason(d)
    if kind == EventKind.PLAN_EXECUTED:
        return _("%(actor)s executed the plan: %(description)s") % {"actor": actor, "description": d.get("description", "")}
    if kind == EventKind.DELIVERY_OUTCOME:
        return delivery_outcome_text(d) or d.get("text") or kind
    if kind in (EventKind.SLA_REMINDER, EventKind.SLA_BREACHED):
        return sla_text(kind, d, message.get("at")) or d.get("text") or kind
    if kind == EventKind.PROVIDER_OUTAGE:
        return _(
            "%(provider)s is failing for everyone (%(failures)s attempts in a row): messages are held and "
            "retried, and nobody is escalated for the silence"
        ) % {"provider": outages.name(d.get("transport", "")), "failures": d.get("failures", "?")}
    if kind == EventKind.PROVIDER_RECOVERED:
        return _("%(provider)s answers again after %(minutes)s min: held messages are going out") % {
            "provider": outages.name(d.get("transport", "")), "minutes": int(d.get("seconds") or 0) // 60,
        }
    if kind == EventKind.FAULT_SUSPECT_ADDED:
        return _("%(actor)s named %(business)s a suspected cause") % {
            "actor": actor, "business": _name(d.get("business")),
        } + _reason(d)
    if kind == EventKind.MONITORING_CLEARED:
        return ngettext(
            "%(actor)s: the alert resolved. The commander decides whether the fault is recovered.",
            "%(actor)s: all %(count)s alerts resolved. The commander decides whether the fault is recovered.",
            d.get("alerts") or 1,
        ) % {"actor": actor, "count": d.get("alerts") or 1}
    if kind == EventKind.CONFERENCE_REQUESTED:
        return _("%(actor)s asked for a video conference with everyone who has checked in") % {"actor": actor}
    if kind == EventKind.CONFERENCE_STARTED:
        return _conference_started_text(d)
    if kind == EventKind.UPDATE_POSTED:
        if d.get("kind") == StatusUpdate.Kind.NOTE:
            return _("%(actor)s added a troubleshooting note: %(body)s") % {"actor": actor, "body": d.get("body", "")}
        return _("%(actor)s posted a progress update: %(body)s") % {"actor": actor, "body": d.get("body", "")}
    # Events other apps add (notifications, conference) before this page learns their words.
    return _("%(actor)s: %(kind)s") % {"actor": actor, "kind": kind}


def _task_updated_text(actor: str, d: dict) -> str:
    parts = []
    if "status" in d:
        parts.append(_("now %(status)s") % {"status": _task_status(d["status"].get("to")).lower()})
    if d.get("progress"):
        parts.append(_("progress: %(progress)s") % {"progress": d["progress"]})
    if "due_at" in d:
        parts.append(_("due time moved"))
    return _("%(actor)s updated the task %(title)s: %(changes)s") % {
        "actor": actor,
        "title": d.get("title", ""),
        "changes": "; ".join(str(p) for p in parts),
    }


def _conference_started_text(d: dict) -> str:
    members = d.get("members") or []
    text = (
        _("The video conference has started with %(people)s") % {"people": _join(members)}
        if members
        else _("The video conference has started")
    )
    if d.get("url"):
        text += _(": %(url)s") % {"url": d["url"]}
    return text + _sandbox(d)


def delivery_outcome_text(d: dict) -> str | None:
    """The sentence for one delivery outcome, from its data; None when the data says too little."""
    status, channel = d.get("status"), d.get("channel")
    error = d.get("error") or ""
    if status == "cancelled" and "count" in d:
        count = int(d.get("count") or 0)
        if isinstance(d.get("person"), dict):
            return ngettext(
                "%(count)d pending page to %(person)s cancelled",
                "%(count)d pending pages to %(person)s cancelled",
                count,
            ) % {"count": count, "person": _name(d["person"])}
        return ngettext(
            "%(count)d pending message cancelled", "%(count)d pending messages cancelled", count
        ) % {"count": count}
    if status == "exhausted":
        return _("Could not page %(person)s: no paging method left") % {"person": _name(d.get("person"))}
    if status == "created":
        text = _("Collaboration group created with %(people)s") % {"people": _join(d.get("members") or [])}
        if d.get("not_added"):
            text += _("; could not add %(people)s (no DingTalk userId)") % {"people": _join(d["not_added"])}
        return text + _sandbox(d)
    if status == "added":
        return _("%(person)s joined the group") % {"person": _name(d.get("person"))} + _sandbox(d)
    if not channel:
        return None
    if status == Delivery.Status.FAILED and channel == Channel.DINGTALK_GROUP_CREATE:
        return _("Could not create the collaboration group: %(error)s") % {"error": error} + _sandbox(d)
    if status == Delivery.Status.FAILED and channel == Channel.DINGTALK_GROUP_MEMBER_ADD:
        return _("Could not add %(person)s to the group: %(error)s") % {
            "person": _name(d.get("person")), "error": error} + _sandbox(d)
    if status == Delivery.Status.FAILED and channel == Channel.DINGTALK_CONFERENCE:
        return _("Could not start the video conference: %(error)s") % {"error": error} + _sandbox(d)
    what = {"channel": _channel(channel), "person": _recipient(d), "error": error}
    receipt = "receipt" in d
    if status == Delivery.Status.SENT:
        text = _("%(channel)s to %(person)s sent") % what
    elif status == Delivery.Status.DELIVERED:
        text = (
            _("%(channel)s to %(person)s answered") if receipt and channel == Channel.ALIYUN_VOICE
            else _("%(channel)s to %(person)s delivered")
        ) % what
    elif status == Delivery.Status.FAILED:
        if receipt and channel == Channel.ALIYUN_VOICE:
            text = _("%(channel)s to %(person)s not answered") % what
        elif receipt:
            text = _("%(channel)s to %(person)s not delivered") % what
        elif error:
            text = _("%(channel)s to %(person)s failed: %(error)s") % what
        else:
            text = _("%(channel)s to %(person)s failed: no receipt came") % what
    elif status == "retrying":
        text = _("%(channel)s to %(person)s failed (%(error)s); retrying") % what
    elif status == "unconfirmed":
        text = _("%(channel)s to %(person)s unconfirmed (%(error)s); not sent again") % what
    else:
        return None
    return _capitalised(text) + _sandbox(d)


def sla_text(kind: str, d: dict, at: str | None) -> str | None:
    """Reminders and breaches of the response's deadlines, from their data."""
    what = d.get("what")
    if what == "check_in" and isinstance(d.get("person"), dict):
        person, minutes = _name(d["person"]), _minutes(d.get("waited_seconds"))
        escalated = [p for step in d.get("escalation") or [] for p in step.get("people") or []]
        if "repaged" not in d:
            return _("%(person)s has still not checked in after %(minutes)s min: escalated to %(people)s") % {
                "person": person, "minutes": minutes, "people": _names(escalated) or _("nobody")}
        text = _("%(person)s has not checked in within %(minutes)s min") % {"person": person, "minutes": minutes}
        if d.get("repaged"):
            text += _(": paged again")
        if escalated:
            text += _("; escalated to %(people)s") % {"people": _names(escalated)}
        if isinstance(d.get("successor"), dict):
            text += _("; %(person)s takes over as commander") % {"person": _name(d["successor"])}
        return text
    if what == "progress_update":
        since, now = parse_datetime(d.get("since") or ""), parse_datetime(at or "")
        minutes = _minutes((now - since).total_seconds()) if since and now else 0
        if d.get("reminded"):
            return _("No progress update for %(minutes)s min: %(people)s reminded") % {
                "minutes": minutes, "people": _names(d["reminded"])}
        return _("No progress update for %(minutes)s min: nobody to remind") % {"minutes": minutes}
    if what == "task_response" and isinstance(d.get("assignee"), dict):
        task = {"title": d.get("title", ""), "person": _name(d["assignee"])}
        if kind == EventKind.SLA_REMINDER:
            return _("Task “%(title)s” not acknowledged in time: %(person)s reminded") % task
        if isinstance(d.get("flagged_to"), dict):
            return _("Task “%(title)s” still not acknowledged by %(person)s: flagged to %(commander)s") % {
                **task, "commander": _name(d["flagged_to"])}
        return _("Task “%(title)s” still not acknowledged by %(person)s: no commander to tell") % task
    return None


# --- labels: an event's data is kept as stored, so a value may predate today's choices ------


def level_label(value) -> str:
    try:
        return Level(int(value)).label
    except (TypeError, ValueError):
        return str(value)


def role_label(value) -> str:
    try:
        return str(RoleAssignment.Role(value).label)
    except ValueError:
        return str(value)


def _status(value) -> str:
    try:
        return str(Fault.Status(value).label)
    except ValueError:
        return str(value)


def _task_status(value) -> str:
    try:
        return str(Task.Status(value).label)
    except ValueError:
        return str(value)


def _channel(value) -> str:
    try:
        return str(Channel(value).label)
    except ValueError:
        return str(value or "")


def _name(ref) -> str:
    return ref.get("name", "?") if isinstance(ref, dict) else "?"


def _names(refs) -> str:
    return _join(_name(r) for r in refs or [])


def _join(names) -> str:
    return _(", ").join(str(n) for n in names)


def _reason(d: dict) -> str:
    return _(" (reason: %(reason)s)") % {"reason": d["reason"]} if d.get("reason") else ""


def _sandbox(d: dict) -> str:
    return _(" (sandbox)") if d.get("transport") == "sandbox" else ""


def _recipient(d: dict) -> str:
    if isinstance(d.get("person"), dict):
        return _name(d["person"])
    channel = d.get("channel")
    if channel in (Channel.DINGTALK_GROUP_MESSAGE, Channel.DINGTALK_CARD, Channel.DINGTALK_GROUP_CREATE):
        return _("the group")
    if channel == Channel.DINGTALK_ROBOT:
        return _("a notification group")
    if channel == Channel.DINGTALK_CONFERENCE:
        return _("the checked-in members")
    if channel == Channel.WEBHOOK:
        return _("the webhook")
    return ""


def _capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]


def _minutes(seconds) -> int:
    try:
        return int(seconds) // 60
    except (TypeError, ValueError):
        return 0

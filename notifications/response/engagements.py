"""Engagements: everyone pulled into a fault is paged until he checks in.

Whoever has not checked in within the level's SLA is paged again and the business's
escalation policy takes its next step; a commander who does not check in is replaced by
the next candidate. The SLA counts from the moment a page got through: while none has
(a provider outage, or a storm that has not reached his first page yet) nobody is
escalated or replaced for a silence the product caused.
"""

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from incidents import selectors as incident_selectors
from incidents import services as incident_services
from incidents.models import Fault, RoleAssignment
from roster import selectors as roster_selectors
from roster.models import CommanderRule, Person

from .. import channels, texts
from ..models import Channel, Delivery, Engagement
from ..outbox import outages
from ..outbox.rows import lock_after_its_fault, person_page

Role = RoleAssignment.Role
Status = Delivery.Status


def _ref(person: Person) -> dict:
    return {"id": person.pk, "name": person.name}


def engagement_open(*, fault: Fault, person: Person, reason: str) -> Engagement:
    """Pull `person` in: page him now, in the change's own transaction, and let the scheduler
    follow up until he checks in.

    The first page is written with the change that pulled him in, so that it is queued on
    the `pages` queue at commit and never waits for the scheduler (in a storm of faults the
    scheduler is busiest exactly when first pages matter most).
    """
    now = timezone.now()
    has_role = incident_selectors.active_roles(fault.pk, person.pk).exists()
    engagement, created = Engagement.objects.get_or_create(
        fault=fault,
        person=person,
        defaults={"reason": reason, "needs_role": not has_role, "created_at": now, "next_check_at": now},
    )
    if not created:
        if engagement.ended_at is not None and has_role and not incident_selectors.has_checked_in(fault.pk, person.pk):
            # He had checked in (or been let go) and now holds a new role: a new round of pages.
            Engagement.objects.filter(pk=engagement.pk).update(
                round=engagement.round + 1, reason=reason, ended_at=None, end_reason="", checked_in_at=None,
                paged_at=None, repaged_at=None, escalations=0, next_check_at=now, needs_role=False,
            )
        elif has_role and engagement.needs_role:
            Engagement.objects.filter(pk=engagement.pk).update(needs_role=False)
        engagement = Engagement.objects.select_related("fault", "person").get(pk=engagement.pk)
    if engagement.ended_at is None and engagement.paged_at is None and _reachable(person):
        _page(engagement, 1)
        sla = incident_selectors.sla_for(fault.level)
        # A contact still needs his role (the scheduler gives it at once); others are looked at
        # again when the check-in SLA has passed.
        due = now if engagement.needs_role else now + sla.check_in_within
        Engagement.objects.filter(pk=engagement.pk).update(paged_at=now, next_check_at=due)
        engagement.refresh_from_db()
    return engagement


def _reachable(person: Person) -> bool:
    # Someone with no usable method is left to the scheduler, which puts that on the timeline
    # (a reaction inside another service's transaction writes no event of its own).
    return any(m in Channel.values and channels.can_reach(person, m) for m in (person.paging_methods or []))


def engagements_end(*, fault: Fault, reason: str, person: Person | None = None) -> None:
    rows = Engagement.objects.filter(fault=fault, ended_at__isnull=True)
    if person is not None:
        rows = rows.filter(person=person)
    rows.update(ended_at=timezone.now(), end_reason=reason, next_check_at=None)


def engagement_checked_in(*, fault: Fault, person: Person) -> None:
    now = timezone.now()
    Engagement.objects.filter(fault=fault, person=person, ended_at__isnull=True).update(
        checked_in_at=now, ended_at=now, end_reason="checked in", next_check_at=None
    )


def _role_codes(fault_id: int, person_id: int) -> list[str]:
    """The person's active roles on the fault, commander first; empty for a contact without one yet."""
    codes = set(incident_selectors.active_roles(fault_id, person_id).values_list("role", flat=True))
    return [code for code in Role.values if code in codes]


def _page_key(e: Engagement, n: int) -> str:
    return f"fault:{e.fault_id}:engage:{e.person_id}:{e.round}:{n}"


def _page(e: Engagement, n: int, *, again: bool = False) -> Delivery | None:
    fault, person = e.fault, e.person
    # An emergency contact is made an emergency handler by the scheduler, so that he can check in.
    roles = _role_codes(fault.pk, person.pk) or ([Role.EMERGENCY_HANDLER] if e.needs_role else [])
    subject, body = texts.page(fault, language=person.language, roles=roles, again=again)
    return person_page(fault=fault, person=person, page_key=_page_key(e, n), subject=subject, body=body)


def _pages(e: Engagement):
    return Delivery.objects.filter(
        fault_id=e.fault_id, person_id=e.person_id, purpose=Delivery.Purpose.PAGE,
        page_key__startswith=f"fault:{e.fault_id}:engage:{e.person_id}:{e.round}:",
    )


def _page_facts(e: Engagement) -> list[tuple]:
    """(status, unconfirmed, sent_at, transport, attempts) of each page of this round, in one read."""
    return list(_pages(e).values_list("status", "unconfirmed", "sent_at", "transport", "attempts"))


def _reached_at(pages: list[tuple]):
    """When a page of this round first got through to a provider, or None."""
    through = [sent_at for status, unconfirmed, sent_at, _, _ in pages
               if status in (Status.SENT, Status.DELIVERED) and not unconfirmed and sent_at]
    return min(through, default=None)


def _held_by_us(pages: list[tuple]) -> str | None:
    """Why his silence is ours, not his: no page got through because of an outage, or yet at all."""
    outage = outages.current_of({transport for _, _, _, transport, _ in pages})
    if outage:
        return f"{outages.name(outage[0].transport)} is failing for everyone"
    if pages and not any(attempts for *_, attempts in pages):
        return "no page has been tried yet"
    return None


def _escalation_schedule(fault: Fault, now) -> list:
    # Every page of the policy, repeats included, in order of `after`.
    return roster_selectors.escalation_due(business=fault.affected_business, waited=timedelta(days=3650), at=now)


def _escalate(e: Engagement, waited: timedelta, now) -> list[dict]:
    """Take the escalation pages that have come due since the last look; returns who was paged."""
    fault = e.fault
    due = roster_selectors.escalation_due(business=fault.affected_business, waited=waited, at=now)
    paged = []
    for index, page in enumerate(due[e.escalations:], start=e.escalations):
        step = {"step": index + 1, "after_minutes": int(page.after.total_seconds() // 60), "people": []}
        for target in page.people:
            if target.pk == e.person_id:
                continue
            subject, body = texts.escalation(
                fault, language=target.language, absent=e.person.name, roles=_role_codes(fault.pk, e.person_id),
                minutes=int(waited.total_seconds() // 60),
            )
            person_page(
                fault=fault, person=target,
                page_key=f"fault:{fault.pk}:escalate:{e.person_id}:{e.round}:{index}:{target.pk}",
                subject=subject, body=body,
            )
            step["people"].append(_ref(target))
        if not page.people:
            step["reason"] = page.reason
        paged.append(step)
    e.escalations = len(due)
    return paged


def _next_escalation_at(e: Engagement, start, now):
    later = [p.after for p in _escalation_schedule(e.fault, now)[e.escalations:]]
    return start + later[0] if later else None


def _next_commander(fault: Fault, now) -> Person | None:
    """The first candidate of the level's commander rule who has not been commander of this fault."""
    rule = CommanderRule.objects.filter(level=fault.level).first()
    if rule is None:
        return None
    tried = set(RoleAssignment.objects.filter(fault=fault, role=Role.COMMANDER).values_list("person_id", flat=True))
    for candidate in rule.candidates.all():
        people, _ = roster_selectors.resolve_target(target=candidate, business=fault.affected_business, at=now)
        for person in people:
            if person.pk not in tried:
                return person
    return None


@transaction.atomic
def engagement_follow_up(*, engagement_id: int) -> str | None:
    """Take the next step for one engagement that is due; returns what was done."""
    now = timezone.now()
    e = lock_after_its_fault(
        Engagement.objects.select_related("fault", "person").filter(
            pk=engagement_id, ended_at__isnull=True, next_check_at__lte=now
        )
    )
    if e is None:
        return None
    fault, person = e.fault, e.person
    if not fault.is_open:
        Engagement.objects.filter(pk=e.pk).update(ended_at=now, end_reason=f"the fault is {fault.status}", next_check_at=None)
        return "ended"
    if incident_selectors.has_checked_in(fault.pk, person.pk):
        Engagement.objects.filter(pk=e.pk).update(checked_in_at=now, ended_at=now, end_reason="checked in", next_check_at=None)
        return "checked in"
    if e.needs_role and not incident_selectors.active_roles(fault.pk, person.pk).exists():
        # Only someone with a role can check in; an emergency contact is an emergency handler.
        Engagement.objects.filter(pk=e.pk).update(needs_role=False)
        incident_services.role_assign(fault=fault, person=person, role=Role.EMERGENCY_HANDLER, actor=None)
        e.refresh_from_db()
        if e.paged_at is not None:
            sla = incident_selectors.sla_for(fault.level)
            Engagement.objects.filter(pk=e.pk).update(next_check_at=e.paged_at + sla.check_in_within)
            return "given a role"
    sla = incident_selectors.sla_for(fault.level)
    if e.paged_at is None:
        _page(e, 1)
        Engagement.objects.filter(pk=e.pk).update(paged_at=now, next_check_at=now + sla.check_in_within)
        return "paged"
    pages = _page_facts(e)
    reached = _reached_at(pages)
    if reached is None and _held_by_us(pages):
        # Look again soon: the SLA starts when a page gets through.
        Engagement.objects.filter(pk=e.pk).update(next_check_at=now + timedelta(seconds=settings.NOTIFY_FOLLOW_UP_EVERY))
        return "held"
    start = max(e.paged_at, reached) if reached else e.paged_at
    if reached is None:
        # Paged during an outage that has ended since, and no page through yet: his time
        # runs from the outage's end, not from a page that could not reach him.
        ended = outages.last_ended({transport for _, _, _, transport, _ in pages})
        if ended is not None and ended > start:
            start = ended
    waited = now - start
    if e.repaged_at is None:
        if waited < sla.check_in_within:
            Engagement.objects.filter(pk=e.pk).update(next_check_at=start + sla.check_in_within)
            return None
        return _breached(e, sla, waited, start, now)
    escalated = _escalate(e, waited, now)
    Engagement.objects.filter(pk=e.pk).update(escalations=e.escalations, next_check_at=_next_escalation_at(e, start, now))
    if escalated:
        names = [p["name"] for step in escalated for p in step["people"]] or ["nobody"]
        incident_services.sla_breach_record(
            fault=fault, what="check_in",
            text=f"{person.name} has still not checked in after {int(waited.total_seconds() // 60)} min: escalated to {', '.join(names)}",
            data={"person": _ref(person), "waited_seconds": int(waited.total_seconds()), "escalation": escalated},
        )
        return "escalated"
    return None


def _breached(e: Engagement, sla, waited: timedelta, start, now) -> str:
    """The check-in SLA is missed: page again, take the policy's next step, replace a commander."""
    fault, person = e.fault, e.person
    minutes = int(sla.check_in_within.total_seconds() // 60)
    is_commander = incident_selectors.active_roles(fault.pk, person.pk).filter(role=Role.COMMANDER).exists()
    successor = _next_commander(fault, now) if is_commander else None
    # A commander who is about to be replaced is not paged again: his pages stop with the role.
    if successor is None:
        _page(e, 2, again=True)
    escalated = _escalate(e, waited, now)
    e.repaged_at = now
    Engagement.objects.filter(pk=e.pk).update(
        repaged_at=now, escalations=e.escalations, next_check_at=_next_escalation_at(e, start, now)
    )
    text = f"{person.name} ({e.reason}) has not checked in within {minutes} min" + ("" if successor else ": paged again")
    names = [p["name"] for step in escalated for p in step["people"]]
    if names:
        text += f"{';' if successor is None else ':'} escalated to {', '.join(names)}"
    if successor is not None:
        text += f"; {successor.name} takes over as commander"
    elif is_commander:
        text += "; no other commander candidate is available"
    incident_services.sla_breach_record(
        fault=fault, what="check_in", text=text,
        data={"person": _ref(person), "waited_seconds": int(waited.total_seconds()), "repaged": successor is None,
              "escalation": escalated, "successor": _ref(successor) if successor else None},
    )
    if successor is not None:
        incident_services.role_assign(fault=fault, person=successor, role=Role.COMMANDER, actor=None)
    return "breached"

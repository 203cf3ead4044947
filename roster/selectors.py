"""Reads of the roster: "who, now?".

Everything here is read-only and takes aware datetimes (UTC or any zone). Schedules are
computed in the schedule's own time zone; intervals are half-open, [start, end): at a
hand-off instant the incoming person is on call and the outgoing one is not.

Levels are plain ints, 1 (P1, most severe) … 4 (P4), so that `roster` never imports
`incidents`.

Used by:
- incidents.services.fault_declare — `choose_commander`, `fault_handler_on_duty`;
- notifications — `emergency_contacts`, `notification_recipients`, `notification_groups`,
  `escalation_steps`, `escalation_due`;
- the admin and the calendar feeds — `on_call`, `shifts`, `person_shifts`.
"""

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import NamedTuple
from zoneinfo import ZoneInfo

from django.db.models import Prefetch

from django.utils import timezone

from .models import (
    Business,
    CandidateKind,
    CommanderRule,
    EscalationPolicy,
    EscalationStep,
    NotificationGroup,
    Override,
    Person,
    Rotation,
    RotationMember,
    Schedule,
)

UTC = dt.timezone.utc


# --- schedules ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Shift:
    """A stretch of time in which the same people are on call for one reason.

    `source` says why: "override" or "layer"; `label` names the override's reason or the
    rotation. `people` is never empty.
    """

    schedule: Schedule
    start: dt.datetime
    end: dt.datetime
    people: tuple[Person, ...]
    source: str
    label: str


def _to_utc(naive: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    # fold=0: an ambiguous wall time (the repeated hour in autumn) means its first
    # occurrence; a skipped one (spring) is read with the offset from before the change.
    return naive.replace(tzinfo=zone, fold=0).astimezone(UTC)


@dataclass
class _Layer:
    """A rotation loaded once, evaluated many times without queries."""

    rotation: Rotation
    zone: ZoneInfo
    people: list[Person]

    @property
    def _origin(self) -> dt.datetime:
        return dt.datetime.combine(self.rotation.start_date, self.rotation.hand_off_time)

    def boundary(self, k: int) -> dt.datetime:
        """The UTC instant at which shift k starts (shift 0 is the first member's first)."""
        return _to_utc(self._origin + k * self.rotation.shift_step, self.zone)

    def shift_index(self, at: dt.datetime) -> int:
        """k such that boundary(k) <= at < boundary(k+1) (may be negative before the start)."""
        local = at.astimezone(self.zone).replace(tzinfo=None)
        k = (local - self._origin) // self.rotation.shift_step
        # The wall-clock estimate can be one off around DST changes; settle it on UTC.
        while self.boundary(k) > at:
            k -= 1
        while self.boundary(k + 1) <= at:
            k += 1
        return k

    def day_start(self, day: dt.date) -> dt.datetime:
        return _to_utc(dt.datetime.combine(day, self.rotation.hand_off_time), self.zone)

    def is_active(self, at: dt.datetime) -> bool:
        if not self.rotation.is_restricted:
            return True
        # A rotation day runs from one hand-off time to the next.
        day = at.astimezone(self.zone).date()
        if self.day_start(day) > at:
            day -= dt.timedelta(days=1)
        return day.weekday() in self.rotation.active_weekdays

    def on_call(self, at: dt.datetime) -> Person | None:
        if not self.people or not self.is_active(at):
            return None
        k = self.shift_index(at)
        if k < 0:
            return None  # before the rotation starts
        return self.people[k % len(self.people)]

    def boundaries(self, start: dt.datetime, end: dt.datetime) -> Iterable[dt.datetime]:
        """Every instant in (start, end) at which this layer's answer may change."""
        if not self.people:
            return
        k = max(self.shift_index(start) + 1, 0)
        while (b := self.boundary(k)) < end:
            if b > start:
                yield b
            k += 1
        if self.rotation.is_restricted:
            day = start.astimezone(self.zone).date() - dt.timedelta(days=1)
            while (b := self.day_start(day)) < end:
                if b > start:
                    yield b
                day += dt.timedelta(days=1)


class _Plan:
    """A schedule with its rotations, members and overrides, loaded in a few queries."""

    def __init__(self, schedule: Schedule, overrides_from: dt.datetime, overrides_until: dt.datetime):
        self.schedule = schedule
        zone = schedule.zone
        rotations = schedule.rotations.prefetch_related(
            Prefetch("rotation_members", queryset=RotationMember.objects.select_related("person"))
        )
        self.layers = [
            _Layer(rotation=r, zone=zone, people=[m.person for m in r.rotation_members.all()]) for r in rotations
        ]
        self.layers.sort(key=lambda layer: (-layer.rotation.layer, layer.rotation.pk))
        self.overrides = list(
            schedule.overrides.filter(start__lt=overrides_until, end__gt=overrides_from).select_related("person")
        )

    def evaluate(self, at: dt.datetime) -> tuple[tuple[Person, ...], str, str]:
        covering = [o for o in self.overrides if o.start <= at < o.end]
        if covering:
            people = tuple(dict.fromkeys(o.person for o in covering))
            return people, "override", "; ".join(o.reason or f"{o.person} covers" for o in covering)
        top = None
        found: list[tuple[Person, Rotation]] = []
        for layer in self.layers:
            if top is not None and layer.rotation.layer < top:
                break
            person = layer.on_call(at)
            if person is not None:
                top = layer.rotation.layer
                found.append((person, layer.rotation))
        if not found:
            return (), "", ""
        people = tuple(dict.fromkeys(p for p, _ in found))
        return people, "layer", ", ".join(dict.fromkeys(r.name for _, r in found))

    def boundaries(self, start: dt.datetime, end: dt.datetime) -> list[dt.datetime]:
        points = {start}
        for layer in self.layers:
            points.update(layer.boundaries(start, end))
        for o in self.overrides:
            points.update(t for t in (o.start, o.end) if start < t < end)
        return sorted(points)


def _aware(at: dt.datetime) -> dt.datetime:
    if at.tzinfo is None:
        raise ValueError("roster selectors need aware datetimes")
    return at.astimezone(UTC)


def on_call(*, schedule: Schedule, at: dt.datetime | None = None) -> list[Person]:
    """The people on call on `schedule` at the instant `at` (default: now).

    Overrides covering `at` win over every layer (all covering overrides' people, in start
    order). Otherwise the highest layer with someone on call answers; two rotations on the
    same layer both answer. Empty when nobody is on call.
    """
    at = _aware(at or timezone.now())
    people, _, _ = _Plan(schedule, at, at + dt.timedelta(microseconds=1)).evaluate(at)
    return list(people)


def shifts(*, schedule: Schedule, start: dt.datetime, end: dt.datetime) -> list[Shift]:
    """The stretches between `start` and `end` in which someone is on call on `schedule`.

    Consecutive stretches with the same people and reason are merged; stretches with nobody
    on call are left out; the first and last are clipped to [start, end).
    """
    start, end = _aware(start), _aware(end)
    if end <= start:
        return []
    plan = _Plan(schedule, start, end)
    points = plan.boundaries(start, end) + [end]
    result: list[Shift] = []
    for a, b in zip(points, points[1:]):
        people, source, label = plan.evaluate(a)
        if not people:
            continue
        last = result[-1] if result else None
        if last and last.end == a and (last.people, last.source, last.label) == (people, source, label):
            result[-1] = Shift(schedule, last.start, b, people, source, label)
        else:
            result.append(Shift(schedule, a, b, people, source, label))
    return result


def person_shifts(*, person: Person, start: dt.datetime, end: dt.datetime) -> list[Shift]:
    """The person's shifts on every schedule they may be on call on, by start time."""
    schedule_ids = set(RotationMember.objects.filter(person=person).values_list("rotation__schedule", flat=True))
    schedule_ids |= set(
        Override.objects.filter(person=person, start__lt=end, end__gt=start).values_list("schedule", flat=True)
    )
    found = []
    for schedule in Schedule.objects.filter(pk__in=schedule_ids):
        found += [s for s in shifts(schedule=schedule, start=start, end=end) if person in s.people]
    return sorted(found, key=lambda s: (s.start, s.schedule.pk))


def next_handoffs(*, schedule: Schedule, days: int = 7, at: dt.datetime | None = None) -> list[Shift]:
    """On call now and for the next `days` days: the shifts overlapping [at, at + days)."""
    at = _aware(at or timezone.now())
    return shifts(schedule=schedule, start=at, end=at + dt.timedelta(days=days))


# --- choices for a fault ------------------------------------------------------------------


class Choice(NamedTuple):
    """A chosen person (or None) and why, as JSON-ready data for the fault's timeline.

    `explanation` has "rule" (what was asked), "chosen" (the candidate that answered, or
    None) and "fallbacks" (each candidate skipped before it, with the reason).
    """

    person: Person | None
    explanation: dict


def _first(people: list[Person]) -> Person | None:
    return people[0] if people else None


def resolve_target(*, target, business: Business | None, at: dt.datetime) -> tuple[list[Person], str]:
    """The people a commander candidate or escalation step points at, at `at`.

    Returns (people, reason) where reason says why the list is empty ("" when it is not).
    """
    kind = target.kind
    if kind == CandidateKind.PERSON:
        return ([target.person], "") if target.person else ([], "no person named")
    if kind == CandidateKind.TEAM_LEADER:
        if target.team is None:
            return [], "no team named"
        leader = target.team.leader
        return ([leader], "") if leader else ([], f"{target.team} has no leader")
    if kind == CandidateKind.SCHEDULE:
        if target.schedule is None:
            return [], "no schedule named"
        people = on_call(schedule=target.schedule, at=at)
        return people, "" if people else f"nobody is on call on {target.schedule}"
    if business is None:
        return [], "no business given"
    person = business.technical_leader if kind == CandidateKind.TECHNICAL_LEADER else business.stability_contact
    if person is None:
        what = "technical team leader" if kind == CandidateKind.TECHNICAL_LEADER else "stability contact"
        return [], f"{business} has no {what}"
    return [person], ""


def choose_commander(*, level: int, business: Business | None, at: dt.datetime | None = None) -> Choice:
    """The commander for a fault of `level` affecting `business`, by the level's commander rule.

    Candidates are tried in order; a candidate that yields nobody (no leader named, nobody
    on call, the business has no such contact) is recorded as a fallback and the next one
    is tried. A schedule with several people on call gives its first. Person None when
    there is no rule for the level or no candidate yields anyone.
    """
    at = _aware(at or timezone.now())
    rule = (
        CommanderRule.objects.filter(level=level)
        .prefetch_related("candidates__person", "candidates__team__leader", "candidates__schedule")
        .first()
    )
    explanation = {"rule": f"P{level}", "chosen": None, "fallbacks": []}
    if rule is None:
        explanation["fallbacks"].append(f"no commander rule for P{level}")
        return Choice(None, explanation)
    for candidate in rule.candidates.all():
        people, reason = resolve_target(target=candidate, business=business, at=at)
        if people:
            explanation["chosen"] = {"position": candidate.position, "candidate": candidate.describe()}
            return Choice(people[0], explanation)
        explanation["fallbacks"].append(f"{candidate.position}. {candidate.describe()} — {reason}")
    return Choice(None, explanation)


def fault_handler_schedule() -> Schedule | None:
    """The schedule marked "Fault handler on duty" (the monitoring duty engineers), if any."""
    return Schedule.objects.filter(purpose=Schedule.Purpose.FAULT_HANDLER).first()


def fault_handler_on_duty(*, at: dt.datetime | None = None) -> Choice:
    """The fault handler on duty at `at`: the first person on call on the fault-handler schedule.

    This is who initiates automatically declared faults. Person None (with the reason in
    the explanation) when there is no such schedule or nobody is on call on it.
    """
    at = _aware(at or timezone.now())
    schedule = fault_handler_schedule()
    explanation = {"rule": "fault handler on duty", "chosen": None, "fallbacks": []}
    if schedule is None:
        explanation["fallbacks"].append("no schedule is marked “Fault handler on duty”")
        return Choice(None, explanation)
    person = _first(on_call(schedule=schedule, at=at))
    if person is None:
        explanation["fallbacks"].append(f"nobody is on call on {schedule}")
    else:
        explanation["chosen"] = {"schedule": {"id": schedule.pk, "name": schedule.name}}
    return Choice(person, explanation)


def emergency_contacts(*, business: Business, at: dt.datetime | None = None) -> list[Person]:
    """The business's emergency contacts at `at`: who joins the fault's group and is dialled.

    The people on call on the business's emergency-contact schedule; when it has nobody
    (or the business has no schedule), its stability contact, else its technical team
    leader; else nobody.
    """
    at = _aware(at or timezone.now())
    if business.emergency_schedule_id is not None:
        people = on_call(schedule=business.emergency_schedule, at=at)
        if people:
            return people
    fallback = business.stability_contact or business.technical_leader
    return [fallback] if fallback else []


def notification_recipients(*, business: Business) -> list[Person]:
    """The people who receive impact and progress notifications of the business's faults."""
    return list(business.notification_recipients.all())


def notification_groups(*, business: Business) -> list[NotificationGroup]:
    """The DingTalk groups (openConversationId or robot webhook) that receive them."""
    return list(business.notification_groups.all())


# --- escalation ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    """One escalation page: after `after` without check-in, page `people`.

    `step` is the EscalationStep; `repeat` is 0 for its first page and n for its n-th repeat
    (only the last step repeats). `reason` says why `people` is empty, if it is.
    """

    step: EscalationStep
    after: dt.timedelta
    repeat: int
    people: list[Person] = field(default_factory=list)
    reason: str = ""


def escalation_policy_for(*, business: Business | None) -> EscalationPolicy | None:
    """The business's escalation policy, else the default one, else None."""
    if business is not None and business.escalation_policy_id is not None:
        return business.escalation_policy
    return EscalationPolicy.objects.filter(is_default=True).first()


def escalation_steps(*, business: Business | None, at: dt.datetime | None = None) -> list[Page]:
    """The steps of the business's policy with their people resolved at `at`, without repeats.

    Ordered by `after`; business-relative steps (technical leader, stability contact) use
    `business`.
    """
    return escalation_due(business=business, waited=None, at=at)


def escalation_due(
    *, business: Business | None, waited: dt.timedelta | None, at: dt.datetime | None = None
) -> list[Page]:
    """Every page due once the paged people have waited `waited` without checking in.

    Includes the last step's repeats (every `repeat_last_step_every` minutes after it, at
    most `repeat_limit` times). With waited=None, all steps once, without repeats. A
    caller compares this list with the pages it has already sent.
    """
    at = _aware(at or timezone.now())
    policy = escalation_policy_for(business=business)
    if policy is None:
        return []
    steps = list(policy.steps.select_related("person", "team__leader", "schedule"))
    pages = []
    for step in steps:
        after = dt.timedelta(minutes=step.after_minutes)
        if waited is not None and after > waited:
            break
        people, reason = resolve_target(target=step, business=business, at=at)
        pages.append(Page(step, after, 0, people, reason))
    if waited is not None and steps and pages and pages[-1].step == steps[-1] and policy.repeat_last_step_every:
        last = pages[-1]
        every = dt.timedelta(minutes=policy.repeat_last_step_every)
        for n in range(1, policy.repeat_limit + 1):
            if last.after + n * every > waited:
                break
            pages.append(Page(last.step, last.after + n * every, n, last.people, last.reason))
    return pages

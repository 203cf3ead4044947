"""Small explicit factories for roster rows."""

import datetime as dt
import itertools

from roster.models import (
    Business,
    CommanderCandidate,
    CommanderRule,
    EscalationPolicy,
    EscalationStep,
    Override,
    Person,
    Rotation,
    RotationMember,
    Schedule,
    Team,
)

_n = itertools.count(1)


def person(name=None, **kw):
    n = next(_n)
    return Person.objects.create(name=name or f"Person {n}", phone=f"+86139{n:08d}", **kw)


def people(*names):
    return [person(name) for name in names]


def business(name=None, **kw):
    n = next(_n)
    return Business.objects.create(name=name or f"Business {n}", slug=f"business-{n}", **kw)


def team(name=None, leader=None):
    n = next(_n)
    return Team.objects.create(name=name or f"Team {n}", slug=f"team-{n}", leader=leader)


def schedule(name=None, time_zone="Asia/Shanghai", **kw):
    n = next(_n)
    return Schedule.objects.create(name=name or f"Schedule {n}", slug=f"schedule-{n}", time_zone=time_zone, **kw)


def rotation(schedule, members, *, start_date=dt.date(2026, 1, 5), hand_off_time=dt.time(9, 0), length=1,
             unit=Rotation.Unit.DAYS, layer=1, weekdays=None, name=None):
    r = Rotation.objects.create(
        schedule=schedule,
        name=name or f"Layer {layer}",
        layer=layer,
        shift_length=length,
        shift_unit=unit,
        start_date=start_date,
        hand_off_time=hand_off_time,
        **({"active_weekdays": weekdays} if weekdays is not None else {}),
    )
    for position, member in enumerate(members, start=1):
        RotationMember.objects.create(rotation=r, person=member, position=position)
    return r


def override(schedule, person, start, end, reason=""):
    return Override.objects.create(schedule=schedule, person=person, start=start, end=end, reason=reason)


def commander_rule(level, *candidates):
    """candidates: dicts like {"kind": "person", "person": p}; replaces the shipped rule."""
    CommanderRule.objects.filter(level=level).delete()
    rule = CommanderRule.objects.create(level=level)
    for position, candidate in enumerate(candidates, start=1):
        CommanderCandidate.objects.create(rule=rule, position=position, **candidate)
    return rule


def escalation_policy(*steps, name=None, repeat_every=None, repeat_limit=3, is_default=False):
    """steps: (after_minutes, {"kind": ..., ...}) pairs."""
    policy = EscalationPolicy.objects.create(
        name=name or f"Policy {next(_n)}", repeat_last_step_every=repeat_every, repeat_limit=repeat_limit,
        is_default=is_default,
    )
    for position, (after, target) in enumerate(steps, start=1):
        EscalationStep.objects.create(policy=policy, position=position, after_minutes=after, **target)
    return policy


def at(zone, *args):
    """An aware instant given as wall-clock time in `zone`, e.g. at("Europe/Berlin", 2026, 3, 29, 9)."""
    from zoneinfo import ZoneInfo

    return dt.datetime(*args, tzinfo=ZoneInfo(zone))

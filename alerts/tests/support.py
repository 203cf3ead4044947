"""Helpers of the alerts tests (fixtures are in conftest.py)."""

import datetime as dt

from django.utils import timezone

from incidents.models import TimelineEvent
from roster.models import Rotation
from roster.tests import factories as roster_factories


def events(fault, kind: str) -> list[TimelineEvent]:
    """The fault's timeline events of `kind`, in order."""
    return list(TimelineEvent.objects.filter(fault=fault, kind=kind).order_by("seq"))


def put_on_call(schedule, person) -> None:
    """`person` on call on `schedule` around the clock, from some days ago."""
    roster_factories.rotation(
        schedule, [person], start_date=timezone.localdate() - dt.timedelta(days=3), unit=Rotation.Unit.WEEKS
    )

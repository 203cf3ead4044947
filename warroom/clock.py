"""The one place code reads the time from, so that tests can move it."""

from datetime import datetime, timedelta

from django.utils import timezone

_frozen: datetime | None = None


def now() -> datetime:
    return _frozen if _frozen is not None else timezone.now()


def freeze(at: datetime) -> None:
    """Stop the clock at `at` (aware) until `unfreeze()`; tests only."""
    global _frozen
    if timezone.is_naive(at):
        raise ValueError("freeze() needs an aware datetime")
    _frozen = at


def advance(by: timedelta) -> datetime:
    global _frozen
    _frozen = now() + by
    return _frozen


def unfreeze() -> None:
    global _frozen
    _frozen = None

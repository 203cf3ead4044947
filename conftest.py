import uuid
from datetime import datetime, timedelta

import pytest
import time_machine
from django.utils import timezone


class Clock:
    """Time stopped for the test (time-machine); `advance` moves it, `freeze` sets it."""

    def __init__(self, at: datetime):
        self._travel = None
        self.freeze(at)

    def freeze(self, at: datetime) -> None:
        if timezone.is_naive(at):
            raise ValueError("freeze() needs an aware datetime")
        self.stop()
        self._travel = time_machine.travel(at, tick=False)
        self._coordinates = self._travel.start()

    def advance(self, by: timedelta) -> datetime:
        self._coordinates.shift(by)
        return timezone.now()

    @staticmethod
    def now() -> datetime:
        return timezone.now()

    def stop(self) -> None:
        if self._travel is not None:
            self._travel.stop()
            self._travel = None


@pytest.fixture(autouse=True)
def own_cache_keys():
    """Each test reads and writes the shared cache under keys of its own (ids repeat across tests)."""
    from django.core.cache import cache

    previous = cache.key_prefix
    cache.key_prefix = f"{previous}-{uuid.uuid4().hex[:12]}"
    yield
    cache.key_prefix = previous


@pytest.fixture
def clock():
    """Time stopped at the start of the test; move it with clock.advance(timedelta(...))."""
    stopped = Clock(timezone.now().replace(microsecond=0))
    yield stopped
    stopped.stop()

import pytest

from warroom import clock as _clock


@pytest.fixture
def clock():
    """The product's clock, stopped; move it with clock.advance(timedelta(...))."""
    from django.utils import timezone

    _clock.freeze(timezone.now().replace(microsecond=0))
    yield _clock
    _clock.unfreeze()

"""After-commit hooks for timeline events.

`incidents` records what happened; other apps (the live room's broadcaster, the
notification outbox) subscribe here from their AppConfig.ready() and are called only after
the transaction that wrote the event has committed. `incidents` imports none of them.
"""

import logging
from collections.abc import Callable

from django.db import transaction

log = logging.getLogger(__name__)

_subscribers: list[Callable] = []


def subscribe(fn: Callable) -> None:
    if fn not in _subscribers:
        _subscribers.append(fn)


def publish_on_commit(event) -> None:
    transaction.on_commit(lambda: _deliver(event))


def _deliver(event) -> None:
    for fn in list(_subscribers):
        try:
            fn(event)
        except Exception:
            # The event is committed; a subscriber that fails must not hide it from the
            # others. Each subscriber keeps its own recovery (the page catches up by seq,
            # the outbox is swept).
            log.exception("timeline subscriber %r failed for %s", fn, event)

"""Hooks for timeline events.

`incidents` records what happened; other apps subscribe here from AppConfig.ready() and
`incidents` imports none of them. Two kinds of subscriber:

- `in_transaction=True`: called inside the service's transaction, right after the event
  row is written. For writes that must commit or roll back with the event — the
  notification outbox, so that a committed event can never lose its messages. An
  exception here rolls the whole change back.
- default: called after the transaction has committed, for what reaches outside (the
  live page broadcast, queueing Celery tasks). Failures are logged, never raised: the
  change is already committed, and each subscriber has its own recovery (the page
  catches up by seq, the outbox is swept).
"""

import logging
from collections.abc import Callable

from django.db import transaction

log = logging.getLogger(__name__)

_in_transaction: list[Callable] = []
_after_commit: list[Callable] = []


def subscribe(fn: Callable, *, in_transaction: bool = False) -> None:
    target = _in_transaction if in_transaction else _after_commit
    if fn not in target:
        target.append(fn)


def unsubscribe(fn: Callable) -> None:
    for target in (_in_transaction, _after_commit):
        if fn in target:
            target.remove(fn)


def publish(event) -> None:
    """Called by the services inside their transaction, once per event."""
    for fn in list(_in_transaction):
        fn(event)
    transaction.on_commit(lambda: _deliver(event))


def _deliver(event) -> None:
    for fn in list(_after_commit):
        try:
            fn(event)
        except Exception:
            log.exception("timeline subscriber %r failed for %s", fn, event)

"""Waiting on a condition, for tests that drive real processes."""

import time

import pytest


def wait_for(condition, deadline: float, what: str, *, every: float = 0.25):
    """Poll `condition` until it returns a truthy value and return that value.

    Fails the test, naming `what`, if `deadline` seconds pass first. This checks a condition
    again and again; it never stands in for one.
    """
    end = time.monotonic() + deadline
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > end:
            pytest.fail(f"timed out after {deadline} s waiting for {what}")
        time.sleep(every)

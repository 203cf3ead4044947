"""Stopping child processes: politely first, then for good."""

import subprocess
import time
from collections.abc import Iterable


def stop(processes: Iterable[subprocess.Popen | None], timeout: float = 15) -> None:
    """Terminate every process still running, wait up to `timeout` seconds for all, kill the rest."""
    running = [p for p in processes if p is not None and p.poll() is None]
    for process in running:
        process.terminate()
    deadline = time.monotonic() + timeout
    for process in running:
        try:
            process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

"""A test run told to use a service that is not there stops with an error; it never skips."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from warroom.embedded_redis import free_port

ROOT = Path(__file__).resolve().parents[2]


def run_suite_with(**env):
    return subprocess.run(
        [sys.executable, "-m", "pytest", "incidents/tests/test_services.py", "-q", "-p", "no:cacheprovider"],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.slow
def test_a_redis_that_does_not_answer_fails_the_run():
    url = f"redis://127.0.0.1:{free_port()}/0"
    result = run_suite_with(REDIS_URL=url)
    assert result.returncode == 3
    assert f"Redis at {url} does not answer" in result.stdout + result.stderr
    assert "skipped" not in result.stdout


@pytest.mark.slow
def test_a_database_that_does_not_answer_fails_the_run():
    result = run_suite_with(DATABASE_URL=f"postgres://postgres@127.0.0.1:{free_port()}/test")
    assert result.returncode == 3
    assert "The database (django.db.backends.postgresql) does not answer" in result.stdout + result.stderr

"""What the browser tests stand on: a real daphne process, Debian's chromium, and a way to
reach the database from the test while Playwright runs.

Playwright's sync API keeps an asyncio loop registered on the test's thread, so Django
refuses ORM calls there. Every database step of a browser test therefore runs through
`in_thread()`, on a short-lived thread of its own (the rows are committed: the tests use
`transactional_db`, and daphne, another process, must see them).
"""

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote

import requests
from django.conf import settings
from django.db import connection, connections

from warroom import processes
from warroom.embedded_redis import free_port
from warroom.testing.waiting import wait_for

ARTIFACTS = Path(settings.BASE_DIR) / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def chromium_path(bundled: str) -> str:
    """The chromium to drive: CHROMIUM_PATH, else Debian's, else the one Playwright installed.

    CI installs Debian's chromium (Playwright cannot download its own there); on a laptop,
    `make test` installs Playwright's when there is no system chromium.
    """
    if os.environ.get("CHROMIUM_PATH"):
        return os.environ["CHROMIUM_PATH"]
    return "/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else bundled


def chromium_missing_message(path: str) -> str:
    return (
        f"No chromium at {path}. The browser tests need one: `apt-get install -y chromium` (Debian; CI's "
        "`.ci/run` does this), or `.venv/bin/python -m playwright install chromium`, or point CHROMIUM_PATH at "
        "a chromium binary."
    )


def in_thread(fn, *args, **kwargs):
    """Run a database step off the Playwright thread and return its result."""

    def run():
        try:
            return fn(*args, **kwargs)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(run).result()


def database_url() -> str:
    """The URL of the database the tests use now (the test database, not the configured one)."""
    s = connection.settings_dict
    if s["ENGINE"].endswith("sqlite3"):
        return "sqlite:///" + str(s["NAME"])
    auth = quote(s["USER"] or "")
    if s.get("PASSWORD"):
        auth += ":" + quote(s["PASSWORD"])
    host = s.get("HOST") or "127.0.0.1"
    port = s.get("PORT") or 5432
    return f"postgres://{auth}@{host}:{port}/{quote(s['NAME'])}"


def _env(data_dir: str) -> dict:
    env = dict(os.environ)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "warroom.settings",
            "DATABASE_URL": database_url(),
            "REDIS_URL": settings.REDIS_URL,
            "WARROOM_DATA_DIR": data_dir,
            "DEBUG": "0",
            "DATABASE_POOL": "1",
        }
    )
    return env


class Daphne:
    """The web process, on a free port; `restart()` keeps the port so that pages reconnect."""

    def __init__(self, data_dir: Path):
        self.port = free_port()
        self.data_dir = data_dir
        self.process: subprocess.Popen | None = None
        self.log_path = ARTIFACTS / f"daphne-{self.port}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> "Daphne":
        ARTIFACTS.mkdir(exist_ok=True)
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(self.port), "warroom.asgi:application"],
            cwd=settings.BASE_DIR,
            env=_env(str(self.data_dir)),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        def answering():
            if self.process.poll() is not None:
                raise RuntimeError(f"daphne exited with {self.process.returncode}; see {self.log_path}")
            try:
                return requests.get(self.url + "/login/", timeout=1).status_code == 200
            except requests.ConnectionError:
                return False

        wait_for(answering, timeout, f"daphne to answer (see {self.log_path})", every=0.05)
        return self

    def stop(self) -> None:
        processes.stop([self.process])
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

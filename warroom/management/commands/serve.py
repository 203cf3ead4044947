"""Run the whole product on one machine: what `make run` calls.

Migrates, loads the demo data, then starts daphne (HTTP and WebSockets), a Celery worker
and Celery beat — and, when REDIS_URL is not set, an embedded redis-server for them to
share. Ctrl-C (or SIGTERM) stops every process it started; if one of them dies, it stops
the others and exits non-zero.
"""

import ctypes
import os
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from warroom import processes
from warroom.embedded_redis import EmbeddedRedis

PR_SET_PDEATHSIG = 1


def _die_with_parent():
    # If `serve` itself is killed without a chance to clean up, the children follow it.
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


class Command(BaseCommand):
    help = "Start web (daphne), worker and scheduler (Celery), and an embedded Redis when REDIS_URL is unset."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument("--no-demo", action="store_true", help="Do not load the demo data.")
        parser.add_argument("--concurrency", type=int, default=2, help="Processes of each sending worker (pages, messages).")

    def handle(self, *args, host, port, no_demo, concurrency, **options):
        self.children: list[tuple[str, subprocess.Popen]] = []
        self.redis = None
        self.stopping = False
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        try:
            env = dict(os.environ)
            # Links in messages point at this server unless SITE_URL says otherwise.
            env.setdefault("SITE_URL", f"http://{host}:{port}")
            if not os.environ.get("REDIS_URL"):
                self.stdout.write(f"Starting the embedded Redis on port {settings.EMBEDDED_REDIS_PORT} ...")
                self.redis = EmbeddedRedis(settings.EMBEDDED_REDIS_PORT, settings.DATA_DIR / "redis").start()
                env["REDIS_URL"] = self.redis.url
            call_command("migrate", interactive=False, verbosity=1)
            call_command("collectstatic", interactive=False, verbosity=0)
            if not no_demo:
                call_command("load_demo")
            python = sys.executable
            schedule = str(settings.DATA_DIR / "celerybeat-schedule")
            self._spawn("web", [python, "-m", "daphne", "-b", host, "-p", str(port), "warroom.asgi:application"], env)
            # One worker per queue (see notifications.outbox.queue): a slow provider fills the
            # sending queues and never delays a deadline; the scheduler never delays a page.
            for queue, count in (("pages", concurrency), ("messages", concurrency), ("scheduler", 1)):
                self._spawn(
                    f"worker-{queue}",
                    [python, "-m", "celery", "-A", "warroom", "worker", "-l", "info", "-Q", queue,
                     "-c", str(count), "-n", f"{queue}@%h"],
                    env,
                )
            self._spawn("scheduler", [python, "-m", "celery", "-A", "warroom", "beat", "-l", "info", "-s", schedule], env)
            self.stdout.write(self.style.SUCCESS(f"War Room is starting on http://{host}:{port}/ (Ctrl-C stops it)"))
            self.stdout.write(f"  admin:   http://{host}:{port}/admin/   API docs: http://{host}:{port}/api/docs/")
            self.stdout.write(f"  health:  http://{host}:{port}/healthz")
            return self._watch()
        finally:
            self._stop_all()

    def _spawn(self, name, argv, env):
        process = subprocess.Popen(argv, env=env, preexec_fn=_die_with_parent)
        self.children.append((name, process))

    def _on_signal(self, signum, frame):
        self.stopping = True

    def _watch(self):
        while not self.stopping:
            for name, process in self.children:
                if process.poll() is not None:
                    self.stderr.write(f"{name} exited with {process.returncode}; stopping the others.")
                    sys.exit(1)
            time.sleep(0.5)
        self.stdout.write("Stopping ...")

    def _stop_all(self):
        processes.stop(process for _, process in self.children)
        if self.redis:
            self.redis.stop()

"""The worker's sign of life, kept in Redis, read by /healthz."""

import json

import redis
from django.conf import settings

from django.utils import timezone

KEY = "warroom:worker:heartbeat"


def client() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=2)


def beat(hostname: str) -> None:
    payload = {"at": timezone.now().isoformat(), "hostname": hostname}
    client().set(KEY, json.dumps(payload), ex=settings.WORKER_HEARTBEAT_STALE_AFTER * 10)


def last() -> dict | None:
    raw = client().get(KEY)
    return json.loads(raw) if raw else None

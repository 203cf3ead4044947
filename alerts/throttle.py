"""A per-integration rate limit, counted per minute in the shared cache (Redis)."""

import time

from django.core.cache import cache


def retry_after(integration_id: int, limit: int) -> int:
    """0 when this request may go on; otherwise the seconds until it may be sent again."""
    now = time.time()
    minute = int(now // 60)
    key = f"alerts:rate:{integration_id}:{minute}"
    cache.add(key, 0, timeout=120)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout=120)
        count = 1
    if count <= limit:
        return 0
    return max(1, int((minute + 1) * 60 - now) + 1)

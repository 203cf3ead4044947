from datetime import datetime

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache

from notifications.outbox import outages

from . import heartbeat


def _database() -> dict:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return {"ok": True, "vendor": connection.vendor}
    except Exception as exc:
        return {"ok": False, "error": str(exc)}


def _redis() -> dict:
    try:
        heartbeat.client().ping()
        return {"ok": True}
    except Exception as exc:
        return {"ok": False, "error": str(exc)}


def _worker() -> dict:
    try:
        last = heartbeat.last()
    except Exception as exc:
        return {"ok": False, "error": f"cannot read the heartbeat: {exc}"}
    if last is None:
        return {"ok": False, "error": "no heartbeat yet: are the Celery worker and beat running?"}
    age = (timezone.now() - datetime.fromisoformat(last["at"])).total_seconds()
    ok = age <= settings.WORKER_HEARTBEAT_STALE_AFTER
    result = {"ok": ok, "last_heartbeat": last["at"], "age_seconds": round(age, 1), "hostname": last["hostname"]}
    if not ok:
        result["error"] = "the heartbeat is stale: the worker or the scheduler has stopped"
    return result


def _providers() -> dict:
    """Providers failing for everyone. Reported, but not a reason to take this server out of
    a load balancer: the outbox holds and retries their messages."""
    try:
        down = outages.current()
    except Exception as exc:
        return {"ok": False, "error": f"cannot read the providers' state: {exc}"}
    return {
        "outages": [
            {"transport": s.transport, "name": outages.name(s.transport), "since": s.outage_since.isoformat(),
             "failures": s.failures, "last_error": s.last_error}
            for s in down
        ]
    }


@never_cache
def healthz(request):
    checks = {"database": _database(), "redis": _redis(), "worker": _worker()}
    healthy = all(c["ok"] for c in checks.values())
    providers = _providers() if checks["database"]["ok"] else {"outages": []}
    status = "unhealthy" if not healthy else ("degraded" if providers.get("outages") else "ok")
    return JsonResponse({"status": status, "checks": checks, "providers": providers}, status=200 if healthy else 503)

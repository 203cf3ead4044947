"""A pytest plugin (loaded with `-p` in pytest.ini) that gives the suite its services.

Without REDIS_URL it starts an embedded redis-server on a free port before Django reads
its settings. With DATABASE_URL / REDIS_URL set, the suite uses those, and a service that
does not answer stops the run with an error: it never turns into skipped tests.
"""

import atexit
import os
import tempfile
from pathlib import Path

import pytest

from warroom.embedded_redis import EmbeddedRedis, free_port

# The test process runs many short-lived threads (the live server's, helpers') whose
# connections a pool would never get back; it connects per thread. The product processes
# the tests start (daphne in the browser and alert tests) keep their pool.
os.environ.setdefault("DATABASE_POOL", "0")

if not os.environ.get("REDIS_URL"):
    _redis = EmbeddedRedis(free_port(), Path(tempfile.mkdtemp(prefix="warroom-test-redis-"))).start()
    atexit.register(_redis.stop)
    os.environ["REDIS_URL"] = _redis.url


@pytest.fixture(scope="session", autouse=True)
def services_answer(django_db_blocker):
    import redis
    from django.conf import settings
    from django.db import connection

    try:
        redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=3).ping()
    except redis.RedisError as exc:
        pytest.exit(f"Redis at {settings.REDIS_URL} does not answer: {exc}", returncode=3)
    with django_db_blocker.unblock():
        try:
            connection.ensure_connection()
        except Exception as exc:
            pytest.exit(f"The database ({settings.DATABASES['default']['ENGINE']}) does not answer: {exc}", returncode=3)
        finally:
            connection.close()
            # Django switches to the test database by renaming it in the settings, and a
            # psycopg pool opened now would keep connecting to the old name.
            if getattr(connection, "close_pool", None) is not None:
                connection.close_pool()

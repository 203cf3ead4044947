"""Everyone locks the fault's row first, so a worker recording an outcome and a person
changing the fault never deadlock.

The two transactions are stopped at the worst moment on purpose: the worker has just
locked the fault's group row (to record that the group exists) when the commander assigns
a handler, whose joining the group needs that row too. Were the worker to reach for the
fault only then, each would wait for the other and PostgreSQL would abort one of them.
(SQLite takes its write lock when a transaction begins, so there the two simply queue.)
"""

import threading

import psycopg
import pytest
from django.db import connection

from incidents import services as incidents
from incidents.models import RoleAssignment
from notifications.outbox.attempts import delivery_attempt
from notifications.models import Channel, Delivery
from warroom.testing.waiting import wait_for

from . import factories

DEADLINE = 30


def _is_waiting_for_a_lock(pid: int) -> bool:
    params = connection.get_connection_params()
    with psycopg.connect(**params, autocommit=True) as other:
        row = other.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone()
    return bool(row) and row[0] == "Lock"


@pytest.mark.django_db(transaction=True)
def test_a_worker_recording_the_group_and_a_commander_assigning_a_handler_do_not_deadlock():
    commander = factories.person("Zhang Wei")
    fault = factories.fault(commander=commander)
    handler = factories.person("Li Lei")
    create = Delivery.objects.get(fault=fault, channel=Channel.DINGTALK_GROUP_CREATE)
    postgres = connection.vendor == "postgresql"

    worker_holds_group = threading.Event()
    writer_holds_fault = threading.Event()
    writer_pid = []
    errors = []

    def worker_hook(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if postgres and "notifications_collaborationgroup" in sql and "FOR UPDATE" in sql and not worker_holds_group.is_set():
            worker_holds_group.set()
            # Let the commander take his first lock: the fault, or a wait behind ours.
            wait_for(
                lambda: writer_holds_fault.is_set() or (writer_pid and _is_waiting_for_a_lock(writer_pid[0])),
                DEADLINE,
                "the commander's transaction to lock the fault or to wait for a lock",
                every=0.05,
            )
        return result

    def writer_hook(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if '"incidents_fault"' in sql and "FOR UPDATE" in sql:
            writer_holds_fault.set()
        return result

    def worker():
        try:
            with connection.execute_wrapper(worker_hook):
                delivery_attempt(delivery_id=create.pk)
        except Exception as exc:  # asserted on below
            errors.append(exc)
        finally:
            worker_holds_group.set()
            connection.close()

    def commander_assigns():
        try:
            if postgres:
                writer_pid.append(connection.cursor().connection.info.backend_pid)
                assert worker_holds_group.wait(DEADLINE)
            with connection.execute_wrapper(writer_hook):
                incidents.role_assign(fault=fault, person=handler, role=RoleAssignment.Role.EMERGENCY_HANDLER)
        except Exception as exc:  # asserted on below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker), threading.Thread(target=commander_assigns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    create.refresh_from_db()
    assert create.status in (Delivery.Status.SENT, Delivery.Status.DELIVERED)
    assert fault.roles.filter(person=handler, ended_at__isnull=True).exists()
    assert fault.timeline.filter(kind="delivery.outcome", data__status="created").exists()

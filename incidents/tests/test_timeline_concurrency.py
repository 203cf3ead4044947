"""Writers racing on one fault still produce one gap-free, ordered timeline."""

import threading

import pytest
from django.db import connection

from incidents import services
from incidents.models import TimelineEvent

from . import factories as f

WRITERS = 6
EACH = 10


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_get_distinct_consecutive_seqs():
    commander_user = f.user("commander", "incidents.view_fault")
    fault = f.fault(commander=f.person("Zhang Wei", commander_user))
    start = threading.Barrier(WRITERS)
    errors = []

    def write(n):
        try:
            start.wait()
            for i in range(EACH):
                services.status_update_post(fault=fault, body=f"writer {n} update {i}", actor=commander_user)
        except Exception as exc:  # reported below; a thread's exception would otherwise vanish
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=write, args=(n,)) for n in range(WRITERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    events = list(TimelineEvent.objects.filter(fault=fault).order_by("seq"))
    assert [e.seq for e in events] == list(range(1, WRITERS * EACH + 2))
    # seq order is commit order: each writer's own updates appear in the order it wrote them,
    # and the recorded times never go backwards along the seq.
    for n in range(WRITERS):
        mine = [e.data["body"] for e in events if e.data.get("body", "").startswith(f"writer {n} ")]
        assert mine == [f"writer {n} update {i}" for i in range(EACH)]
    assert all(a.created_at <= b.created_at for a, b in zip(events, events[1:]))
    fault.refresh_from_db()
    assert fault.last_seq == WRITERS * EACH + 1

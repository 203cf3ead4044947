"""What a client sends can be wrong or hostile; the socket answers with an error and keeps going."""

import pytest
from channels.db import database_sync_to_async

from incidents.tests.factories import Cast, user
from warroom.tests.test_consumer import session_cookie, socket, run, add_tasks

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_resume_with_an_infinite_seq_gets_an_error_not_a_crash():
    cast = Cast()
    cookie = session_cookie(cast.stakeholder)

    async def scenario():
        ws = socket(f"/ws/faults/{cast.fault.pk}/", cookie)
        assert (await ws.connect())[0]
        await ws.send_to(text_data='{"type": "resume", "after": 1e999}')
        msg = await ws.receive_json_from(timeout=5)
        assert msg["type"] == "error"
        await ws.disconnect()

    run(scenario)


def test_deeply_nested_json_gets_an_error_not_a_crash():
    cast = Cast()
    cookie = session_cookie(cast.stakeholder)

    async def scenario():
        ws = socket(f"/ws/faults/{cast.fault.pk}/", cookie)
        assert (await ws.connect())[0]
        await ws.send_to(text_data='[' * 100000 + ']' * 100000)
        msg = await ws.receive_json_from(timeout=5)
        assert msg["type"] == "error"
        await ws.disconnect()

    run(scenario)


def test_a_fault_id_too_big_for_the_database_is_not_found():
    someone = user("someone", "incidents.view_fault")
    cookie = session_cookie(someone)

    async def scenario():
        ws = socket("/ws/faults/99999999999999999999999/", cookie)
        connected, _ = await ws.connect()
        assert connected
        message = await ws.receive_output(timeout=5)
        assert message["type"] == "websocket.close" and message["code"] == 4404

    run(scenario)


def test_a_resume_after_a_live_event_still_fills_the_gap_without_repeating():
    cast = Cast()  # seq 1,2
    add_tasks(cast, "A")  # seq 3 -- the page's snapshot was at 2, so it misses 3
    cookie = session_cookie(cast.stakeholder)

    async def scenario():
        ws = socket(f"/ws/faults/{cast.fault.pk}/", cookie)
        assert (await ws.connect())[0]
        await database_sync_to_async(add_tasks)(cast, "B")  # seq 4 arrives live
        m = await ws.receive_json_from(timeout=5)
        assert m["event"]["seq"] == 4
        await ws.send_json_to({"type": "resume", "after": 2})
        got = []
        while True:
            m = await ws.receive_json_from(timeout=5)
            got.append(m)
            if m["type"] != "event":
                break
        assert [m["event"]["seq"] for m in got if m["type"] == "event"] == [3]
        await ws.disconnect()

    run(scenario)

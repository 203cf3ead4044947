"""The fault socket, against the real ASGI application and the real Redis channel layer."""

import logging

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from channels_redis.core import RedisChannelLayer
from django.conf import settings
from django.test import Client

from incidents import services
from incidents.event_types import EventKind
from incidents.models import RoleAssignment, Task
from incidents.tests.factories import Cast, person, user
from warroom.asgi import application

pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = "http://testserver"


def session_cookie(u) -> str:
    """Log `u` in and return his session cookie (sync: the session is a database row)."""
    client = Client()
    client.force_login(u)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


def socket(path: str, cookie: str | None = None, origin: str | None = ORIGIN) -> WebsocketCommunicator:
    headers = []
    if origin:
        headers.append((b"origin", origin.encode()))
    if cookie is not None:
        headers.append((b"cookie", cookie.encode()))
    return WebsocketCommunicator(application, path, headers=headers)


def run(coro_fn):
    async_to_sync(coro_fn)()


async def close_code(ws: WebsocketCommunicator) -> int:
    connected, _ = await ws.connect()
    assert connected, "the socket accepts first, so that the browser learns why it is closed"
    message = await ws.receive_output(timeout=5)
    assert message["type"] == "websocket.close"
    await ws.wait()
    return message["code"]


def add_tasks(cast: Cast, *titles: str) -> None:
    for title in titles:
        services.task_create(
            fault=cast.fault, assignee=cast.handler, kind=Task.Kind.INVESTIGATE, title=title, actor=cast.commander_user
        )


def test_an_anonymous_visitor_is_turned_away():
    cast = Cast()

    async def scenario():
        assert await close_code(socket(f"/ws/faults/{cast.fault.pk}/")) == 4401

    run(scenario)


def test_a_user_who_may_not_see_the_fault_is_turned_away():
    cast = Cast()

    cookie = session_cookie(cast.outsider)

    async def scenario():
        assert await close_code(socket(f"/ws/faults/{cast.fault.pk}/", cookie)) == 4403

    run(scenario)


def test_a_fault_that_does_not_exist_is_reported_as_such():
    someone = user("someone", "incidents.view_fault")

    cookie = session_cookie(someone)

    async def scenario():
        assert await close_code(socket("/ws/faults/999999/", cookie)) == 4404

    run(scenario)


def test_a_handshake_from_another_site_is_refused():
    cast = Cast()

    cookie = session_cookie(cast.stakeholder)

    async def scenario():
        ws = socket(f"/ws/faults/{cast.fault.pk}/", cookie, origin="http://evil.example")
        connected, _ = await ws.connect()
        assert not connected
        ws_without_origin = socket(f"/ws/faults/{cast.fault.pk}/", cookie, origin=None)
        connected, _ = await ws_without_origin.connect()
        assert not connected

    run(scenario)


def test_a_responder_without_the_view_permission_may_follow_his_own_fault():
    cast = Cast()
    responder = user("responder")
    services.role_assign(
        fault=cast.fault, person=person("Responder", responder), role=RoleAssignment.Role.EMERGENCY_HANDLER, actor=None
    )

    cookie = session_cookie(responder)

    async def scenario():
        ws = socket(f"/ws/faults/{cast.fault.pk}/?after=0", cookie)
        connected, _ = await ws.connect()
        assert connected
        first = await ws.receive_json_from(timeout=5)
        assert first["type"] == "event" and first["event"]["seq"] == 1
        await ws.disconnect()

    run(scenario)


def test_a_reconnecting_page_receives_the_events_it_missed_in_order():
    cast = Cast()  # seq 1: declared, seq 2: handler assigned
    add_tasks(cast, "Check the card gateway", "Roll back release 42", "Call the bank")

    cookie = session_cookie(cast.stakeholder)

    async def scenario():
        ws = socket(f"/ws/faults/{cast.fault.pk}/?after=2", cookie)
        connected, _ = await ws.connect()
        assert connected
        got = [await ws.receive_json_from(timeout=5) for _ in range(4)]
        assert [m["type"] for m in got] == ["event", "event", "event", "caught_up"]
        assert [m["event"]["seq"] for m in got[:3]] == [3, 4, 5]
        assert [m["event"]["data"]["title"] for m in got[:3]] == [
            "Check the card gateway",
            "Roll back release 42",
            "Call the bank",
        ]
        assert got[0]["event"]["text"] == "Zhang Wei gave Li Lei a task: Check the card gateway"
        assert got[3]["seq"] == 5
        await ws.disconnect()

    run(scenario)


def test_the_last_seq_may_also_come_as_the_first_message():
    cast = Cast()
    add_tasks(cast, "Check the card gateway")

    cookie = session_cookie(cast.stakeholder)

    async def scenario():
        ws = socket(f"/ws/faults/{cast.fault.pk}/", cookie)
        connected, _ = await ws.connect()
        assert connected
        await ws.send_json_to({"type": "resume", "after": 1})
        got = [await ws.receive_json_from(timeout=5) for _ in range(3)]
        assert [(m["type"], m.get("event", {}).get("seq")) for m in got] == [
            ("event", 2),
            ("event", 3),
            ("caught_up", None),
        ]
        await ws.send_json_to({"type": "hello"})
        assert (await ws.receive_json_from(timeout=5))["type"] == "error"
        await ws.disconnect()

    run(scenario)


def test_a_page_too_far_behind_is_told_to_load_a_fresh_snapshot(settings):
    settings.WARROOM_CATCH_UP_LIMIT = 2
    cast = Cast()
    add_tasks(cast, "One", "Two", "Three")  # seq 3..5

    cookie = session_cookie(cast.stakeholder)

    async def scenario():
        ws = socket(f"/ws/faults/{cast.fault.pk}/?after=1", cookie)
        connected, _ = await ws.connect()
        assert connected
        assert await ws.receive_json_from(timeout=5) == {"type": "snapshot", "seq": 5}
        await ws.disconnect()
        # A page that claims a seq the server never had (a restored database) starts afresh too.
        ws = socket(f"/ws/faults/{cast.fault.pk}/?after=99", cookie)
        assert (await ws.connect())[0]
        assert await ws.receive_json_from(timeout=5) == {"type": "snapshot", "seq": 5}
        await ws.disconnect()

    run(scenario)


def test_a_change_reaches_an_open_socket_once_it_has_committed():
    cast = Cast()

    cookie = session_cookie(cast.stakeholder)

    async def scenario():
        ws = socket(f"/ws/faults/{cast.fault.pk}/?after=2", cookie)
        connected, _ = await ws.connect()
        assert connected
        assert await ws.receive_json_from(timeout=5) == {"type": "caught_up", "seq": 2}
        await database_sync_to_async(add_tasks)(cast, "Check the card gateway")
        message = await ws.receive_json_from(timeout=5)
        assert message["type"] == "event"
        assert message["event"]["seq"] == 3
        assert message["event"]["kind"] == EventKind.TASK_CREATED
        assert message["event"]["data"]["assignee"]["name"] == "Li Lei"
        await database_sync_to_async(services.status_update_post)(
            fault=cast.fault, body="Gateway restarted", actor=cast.commander_user
        )
        message = await ws.receive_json_from(timeout=5)
        assert (message["event"]["seq"], message["event"]["kind"]) == (4, EventKind.UPDATE_POSTED)
        assert await ws.receive_nothing(timeout=0.2)
        await ws.disconnect()

    run(scenario)


def test_events_come_in_the_readers_language():
    cast = Cast()
    add_tasks(cast, "检查网关")

    cookie = session_cookie(cast.stakeholder)

    async def scenario():
        ws = socket(f"/ws/faults/{cast.fault.pk}/?after=2&lang=zh-hans", cookie)
        assert (await ws.connect())[0]
        message = await ws.receive_json_from(timeout=5)
        assert message["event"]["text"] == "Zhang Wei 给 Li Lei 分配了任务：检查网关"
        await ws.disconnect()

    run(scenario)


def test_an_idle_socket_stays_open_and_still_receives_events(caplog):
    """A page nobody touches is the usual case: its socket must outlast the layer's blocking reads.

    The consumer waits for events in a Redis BZPOPMIN that blocks for the layer's
    `brpop_timeout` and is then issued again. A connection that gives up reading sooner
    fails the receive, and with it the socket, after a few idle seconds.
    """
    assert isinstance(get_channel_layer(), RedisChannelLayer), "this is about the Redis layer, not the in-memory one"
    # Longer than one blocking read (and than redis-py's default read timeout, 5 s), so that
    # at least one read comes back empty and the next one starts.
    idle_for = RedisChannelLayer.brpop_timeout + 2
    cast = Cast()
    cookie = session_cookie(cast.stakeholder)
    caplog.set_level(logging.WARNING)

    async def scenario():
        ws = socket(f"/ws/faults/{cast.fault.pk}/?after=2", cookie)
        assert (await ws.connect())[0]
        assert await ws.receive_json_from(timeout=5) == {"type": "caught_up", "seq": 2}

        assert await ws.receive_nothing(timeout=idle_for), "an idle fault sends nothing"
        # The consumer ends only on a disconnect or an error; an error is what daphne logs as
        # "Exception inside application" before the browser sees the socket drop.
        if ws.future.done():
            pytest.fail(f"the socket ended while idle: {ws.future.exception()}")

        await database_sync_to_async(add_tasks)(cast, "Check the card gateway")
        message = await ws.receive_json_from(timeout=5)
        assert (message["type"], message["event"]["seq"]) == ("event", 3)
        await ws.disconnect()

    run(scenario)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []

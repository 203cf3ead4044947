"""A thousand watchers: how fast a change reaches every open war-room socket.

Starts the web tier only (daphne, one process or `--web N` on N ports) on a fresh data
directory — SQLite or DATABASE_URL, an embedded redis-server or REDIS_URL — opens
`--sockets` WebSocket connections to one fault's war room as a signed-in stakeholder
(spread over the web processes), then posts `--changes` progress updates through the API,
one at a time, and times each event's arrival on every socket from the moment its request
was sent.

    .venv/bin/python bench/fanout.py [--sockets 1000] [--changes 20] [--web 1] [--no-record]

Reports: the time to open every socket; per change, the arrival p50/p99/max over all
sockets (from the request) and the API's own answer time; and how many (socket, event)
pairs never arrived. The result is printed and appended, with the command, to
bench/RESULTS.md.
"""

import argparse
import asyncio
import json
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.harness import commander_and_fault, fresh_site, percentile, record, session_of, start_daphne, stop  # noqa: E402
from warroom.embedded_redis import free_port  # noqa: E402

SECTION = "## A thousand watchers: a change to every open socket"



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sockets", type=int, default=1000)
    parser.add_argument("--changes", type=int, default=20)
    parser.add_argument("--web", type=int, default=1, help="daphne processes")
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()

    import websockets

    work = Path(tempfile.mkdtemp(prefix="warroom-bench-fanout-"))
    env, redis = fresh_site(work)
    from django.contrib.auth.models import Permission, User
    from django.db import connection
    from rest_framework.authtoken.models import Token

    lead, fault = commander_and_fault()
    viewer = User.objects.create_user("bench-viewer", password="x")
    viewer.user_permissions.add(Permission.objects.get(codename="view_fault"))
    token = Token.objects.create(user=lead).key
    session = session_of(viewer)
    connection.close()

    ports = [free_port() for _ in range(args.web)]
    webs = start_daphne(ports, env, work)
    try:
        figures = asyncio.run(run(args, websockets, ports, session, token, fault.pk, fault.last_seq))
    finally:
        stop(webs)
        if redis:
            redis.stop()

    lines = [
        f"{args.sockets} sockets over {args.web} daphne process(es) opened in {figures['connect_s']:.1f} s",
        f"{args.changes} changes, arrival from the request over all sockets: p50 {figures['p50']*1000:.0f} ms   "
        f"p99 {figures['p99']*1000:.0f} ms   max {figures['max']*1000:.0f} ms",
        f"API answer: p50 {figures['api_p50']*1000:.0f} ms   max {figures['api_max']*1000:.0f} ms",
        f"events that never arrived: {figures['missing']} of {args.sockets * args.changes}",
    ]
    print("\n".join(lines))
    if not args.no_record:
        record(SECTION, f"--sockets {args.sockets} --changes {args.changes} --web {args.web}", lines)


async def run(args, websockets, ports, session, token, fault_id, last_seq):
    arrivals: dict[int, list[float]] = {}
    sockets = []

    async def reader(ws):
        async for raw in ws:
            message = json.loads(raw)
            if message.get("type") == "event":
                arrivals.setdefault(message["event"]["seq"], []).append(time.monotonic())

    began = time.monotonic()

    async def connect(i):
        port = ports[i % len(ports)]
        ws = await websockets.connect(
            f"ws://127.0.0.1:{port}/ws/faults/{fault_id}/?after={last_seq}",
            additional_headers={"Cookie": f"sessionid={session}", "Origin": f"http://127.0.0.1:{port}"},
            open_timeout=120, max_queue=None,
        )
        sockets.append(ws)

    for start in range(0, args.sockets, 50):  # fifty at a time, as a crowd arrives
        await asyncio.gather(*(connect(i) for i in range(start, min(args.sockets, start + 50))))
    connect_s = time.monotonic() - began
    readers = [asyncio.create_task(reader(ws)) for ws in sockets]

    loop = asyncio.get_running_loop()
    sent_at, api = {}, []
    for i in range(args.changes):
        body = json.dumps({"body": f"Step {i}: rolling back"}).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{ports[0]}/api/v1/faults/{fault_id}/updates/", data=body, method="POST",
            headers={"Authorization": f"Token {token}", "Content-Type": "application/json"},
        )
        t0 = time.monotonic()
        answer = await loop.run_in_executor(None, lambda: json.loads(urllib.request.urlopen(request, timeout=60).read()))
        api.append(time.monotonic() - t0)
        seq = last_seq + 1 + i
        sent_at[seq] = t0
        assert answer, answer
        end = time.monotonic() + 30
        while len(arrivals.get(seq, [])) < args.sockets and time.monotonic() < end:
            await asyncio.sleep(0.01)
    waits = [t - sent_at[seq] for seq, times in arrivals.items() if seq in sent_at for t in times]
    missing = args.sockets * args.changes - len(waits)
    for r in readers:
        r.cancel()
    await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
    return {"connect_s": connect_s, "p50": percentile(waits, 50), "p99": percentile(waits, 99), "max": max(waits),
            "api_p50": percentile(api, 50), "api_max": max(api), "missing": missing}


if __name__ == "__main__":
    main()

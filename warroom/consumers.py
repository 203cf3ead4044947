"""The live war-room socket: /ws/faults/<id>/.

Protocol (JSON text frames):

server → client
  {"type": "event", "event": {fault, seq, kind, actor, data, at, text}}
      one timeline event, in seq order, never twice on one connection; `text` is the
      sentence in the reader's language.
  {"type": "caught_up", "seq": N}
      sent after a catch-up: everything up to N has been sent.
  {"type": "snapshot", "seq": N}
      the client is more than catch_up_limit() events behind (or ahead of the server, after
      a restore): it should load a fresh snapshot of the page instead of replaying.
  {"type": "error", "message": "..."}
      the client sent something the server does not understand.

client → server
  {"type": "resume", "after": N}
      send me every event with a seq above N (the same as connecting with ?after=N).

Close codes: 4401 not logged in, 4403 may not see this fault, 4404 no such fault. A
client should not reconnect after those. The connection is accepted before it is closed
so that the browser learns the code (a refused handshake shows only 1006).

The channel layer is at-most-once, so the consumer also fills gaps itself: a live event
whose seq is more than one above the last one sent triggers a read of the missing ones.
"""

import json
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.utils import translation

from incidents import permissions
from incidents.models import Fault

from .broadcast import event_frame, fault_group
from .selectors.war_room import events_after

# A client further behind than this reloads a snapshot instead of replaying (a setting, so
# that a deployment with very chatty faults can raise it).
DEFAULT_CATCH_UP_LIMIT = 500


def catch_up_limit() -> int:
    return getattr(settings, "WARROOM_CATCH_UP_LIMIT", DEFAULT_CATCH_UP_LIMIT)


CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_NOT_FOUND = 4404


class FaultConsumer(AsyncWebsocketConsumer):
    async def connect(self):
        self.fault_id = int(self.scope["url_route"]["kwargs"]["fault_id"])
        self.group = fault_group(self.fault_id)
        self.last_sent = None  # None until the client says where it is
        self.sent: set[int] = set()  # every seq sent on this connection, so none goes twice
        self.language = self._language()
        user = self.scope.get("user")

        await self.accept()
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        verdict = await self._may_see(user)
        if verdict != "ok":
            await self.close(code=CLOSE_NOT_FOUND if verdict == "missing" else CLOSE_FORBIDDEN)
            return
        # Join before reading the catch-up, so that nothing committed in between is lost;
        # duplicates are dropped by seq.
        await self.channel_layer.group_add(self.group, self.channel_name)
        self.joined = True
        after = self._query_after()
        if after is not None:
            await self._catch_up(after)

    async def disconnect(self, code):
        if getattr(self, "joined", False):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None):
        try:
            message = json.loads(text_data or "")
            after = message["after"] if message.get("type") == "resume" else None
            # A whole number only: 1e999 or 2.5 are not a seq, and must not crash the socket.
            if type(after) is not int or not 0 <= after < 2**31:
                raise ValueError
        except (ValueError, TypeError, KeyError, AttributeError, RecursionError):
            await self._send({"type": "error", "message": 'Send {"type": "resume", "after": <last seq>}.'})
            return
        await self._catch_up(after)

    async def dispatch(self, message):
        # Channels closes stale database connections before every handler, on the one thread
        # that also serves every Django view: with a thousand sockets, each live event would
        # queue there a thousand times. Forwarding an event touches no database (a catch-up
        # does, through database_sync_to_async, which closes stale connections itself).
        if message["type"] == "timeline.event":
            await self.timeline_event(message)
            return
        await super().dispatch(message)

    async def timeline_event(self, message):
        event = message["event"]
        seq = event["seq"]
        if self.last_sent is not None:
            if seq <= self.last_sent:
                return  # already sent by a catch-up
            if seq > self.last_sent + 1:
                # A message between was dropped by the channel layer: read them all from the database.
                await self._catch_up(self.last_sent)
                return
        frame = (message.get("frames") or {}).get(self.language)
        if frame is None:
            await self._send_events([event])
            return
        # Worded and serialised once per language by the broadcaster.
        await self.send(text_data=frame)
        self.sent.add(seq)
        self.last_sent = max(self.last_sent or 0, seq)

    # --- helpers ---

    async def _catch_up(self, after: int) -> None:
        last_seq, events = await self._read_after(after)
        if after > last_seq or last_seq - after > catch_up_limit():
            self.last_sent = last_seq
            await self._send({"type": "snapshot", "seq": last_seq})
            return
        # What the client says it lacks, less what this connection already sent it.
        await self._send_events([e for e in events if e["seq"] not in self.sent])
        self.last_sent = max(self.last_sent or 0, after, last_seq)
        await self._send({"type": "caught_up", "seq": self.last_sent})

    async def _send_events(self, events: list[dict]) -> None:
        with translation.override(self.language):
            worded = [(e["seq"], event_frame(e)) for e in events]
        for seq, frame in worded:
            await self.send(text_data=frame)
            self.sent.add(seq)
            self.last_sent = max(self.last_sent or 0, seq)

    async def _send(self, message: dict) -> None:
        await self.send(text_data=json.dumps(message, ensure_ascii=False))

    @database_sync_to_async
    def _may_see(self, user) -> str:
        fault = Fault.objects.filter(pk=self.fault_id).first() if self.fault_id < 2**63 else None
        if fault is None:
            return "missing"
        return "ok" if permissions.can_view(user, fault) else "forbidden"

    @database_sync_to_async
    def _read_after(self, after: int) -> tuple[int, list[dict]]:
        last_seq = Fault.objects.filter(pk=self.fault_id).values_list("last_seq", flat=True).first() or 0
        limit = catch_up_limit()
        if after >= last_seq or last_seq - after > limit:
            return last_seq, []
        return last_seq, events_after(self.fault_id, after, limit)

    def _query(self) -> dict[str, str]:
        raw = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        return {k: v[-1] for k, v in raw.items()}

    def _query_after(self) -> int | None:
        value = self._query().get("after")
        if value is None or not value.isdigit():
            return None
        return int(value)

    def _language(self) -> str:
        wanted = self._query().get("lang") or self.scope.get("cookies", {}).get(settings.LANGUAGE_COOKIE_NAME, "")
        try:
            return translation.get_supported_language_variant(wanted)
        except LookupError:
            return settings.LANGUAGE_CODE

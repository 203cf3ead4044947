"""The loopback server: HTTP plumbing, the record of every request, injected failures,
provider outages, and the control endpoints that steer it from another process."""

import json
import math
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from . import aliyun, dingtalk
from .base import Answer, Config, Failures, Provider, Recorded
from .webhook import WebhookReceiver

OUTAGE_MODES = ("5xx", "hang")
CONTROL = "/_control/"


@dataclass
class Outage:
    """A period in which every provider, or one, is down."""

    mode: str
    provider: str | None  # None: every provider
    until: float | None  # the time.monotonic() at which it ends by itself; None: when told
    ended: threading.Event = field(default_factory=threading.Event)

    def seconds_left(self) -> float | None:
        return None if self.until is None else round(max(self.until - time.monotonic(), 0.0), 3)

    def active(self) -> bool:
        return not self.ended.is_set() and (self.until is None or time.monotonic() < self.until)

    def covers(self, provider: str) -> bool:
        return self.provider is None or self.provider == provider

    def hold(self) -> None:
        """Block until the outage is over: its time ran out, it was ended, or the server stops."""
        while self.active():
            self.ended.wait(self.seconds_left())

    def state(self) -> dict:
        return {"mode": self.mode, "provider": self.provider, "seconds_left": self.seconds_left()}


class FakeProvider:
    def __init__(self, config: Config | None = None, *, host: str = "127.0.0.1", port: int = 0):
        self.config = config or Config()
        self.requests: list[Recorded] = []  # every request to a provider API, in arrival order
        self._lock = threading.Lock()
        self._failures = Failures()
        self.dingtalk = dingtalk.DingTalk(self.config, self._failures)
        self.aliyun = aliyun.Aliyun(self.config, self._failures)
        self.webhook = WebhookReceiver(self.config, self._failures)
        self._providers: dict[str, Provider] = {p.name: p for p in (self.dingtalk, self.aliyun, self.webhook)}
        self._outage: Outage | None = None
        self._stopping = threading.Event()
        # One thread per request, so that a request held back never holds up the others.
        self._server = ThreadingHTTPServer((host, port), _handler(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    # --- running ----------------------------------------------------------------------

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "FakeProvider":
        self._thread = threading.Thread(target=self._server.serve_forever, name="fakeprovider", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; requests held back (a "timeout" failure, a hanging outage) are answered."""
        self._stopping.set()
        with self._lock:
            outage, self._outage = self._outage, None
        if outage is not None:
            outage.ended.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # --- steering ---------------------------------------------------------------------

    def fail(self, api: str, mode: str, *, times: int = 1) -> None:
        """Answer the next `times` calls of `api` with `mode` (see FAILURE_MODES).

        `api` is a DingTalk path ("/v1.0/robot/ding/send"), an Alibaba Cloud action
        ("SendSms"), "robot/send" for the custom robot, or "webhook".
        """
        self._failures.add(api, mode, times)

    def expire_tokens(self) -> None:
        """Every DingTalk access token issued so far stops working."""
        self.dingtalk.expire_tokens()

    def outage(self, mode: str | None, *, provider: str | None = None, seconds: float | None = None) -> dict | None:
        """Take every provider down, or only `provider` ("dingtalk", "aliyun", "webhook"),
        until the next call, or for `seconds`; `mode` None ends the outage.

        "5xx": every request is answered at once with the provider's HTTP 503.
        "hang": every request is held without an answer, so that the client's read timeout
        fires; it is answered with that 503 once the outage is over or the server stops.
        Requests answered by an outage are never processed nor accepted (see outage_calls).
        Returns the new state, as outage_state() does.
        """
        if mode is not None and mode not in OUTAGE_MODES:
            raise ValueError(f"mode must be one of {OUTAGE_MODES}, or None to end the outage")
        if provider is not None and provider not in self._providers:
            raise ValueError(f"provider must be one of {sorted(self._providers)}, or None for all")
        if seconds is not None and (
            isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not math.isfinite(seconds) or seconds <= 0
        ):
            raise ValueError("seconds must be a positive number, or None for an outage that lasts until ended")
        outage = None
        if mode is not None:
            outage = Outage(mode, provider, None if seconds is None else time.monotonic() + seconds)
        with self._lock:
            previous, self._outage = self._outage, outage
        if previous is not None:
            previous.ended.set()  # what it held is answered now
        return self.outage_state()

    def outage_state(self) -> dict | None:
        """{"mode", "provider", "seconds_left"} of the outage going on, or None."""
        with self._lock:
            outage = self._outage
        return outage.state() if outage is not None and outage.active() else None

    # --- what the providers saw -----------------------------------------------------------

    def calls(self, api: str | None = None) -> list[Recorded]:
        """Every request to `api` (or to any API), however it was answered."""
        with self._lock:
            return [r for r in self.requests if api is None or r.api == api]

    def accepted(self, api: str | None = None) -> list[Recorded]:
        """The requests the provider took: a message sent, a group or card made, a token issued.

        Includes those whose answer a "timeout" failure held back (the provider did the work);
        leaves out refusals, repeats a key made the provider ignore, and outage answers.
        """
        return [r for r in self.calls(api) if r.accepted]

    def outage_calls(self, api: str | None = None) -> list[Recorded]:
        """The requests an outage answered (or, while it hangs, is holding: status 0)."""
        return [r for r in self.calls(api) if r.outage]

    def unexpected(self) -> list[Recorded]:
        """Requests for APIs this server does not know: the product asked for something wrong."""
        return [r for r in self.calls() if r.note == "unknown api"]

    @property
    def _groups(self) -> dict:
        # The notifications tests count DingTalk's scene groups under this name.
        return self.dingtalk.groups

    def describe(self, record: Recorded) -> dict:
        """A request as the control endpoint shows it: what identifies its message, and its answer."""
        provider = self._providers.get(record.provider)
        return {
            "api": record.api,
            "path": record.path,
            "provider": record.provider,
            "status": record.status,
            "outage": record.outage,
            "fields": provider.key_fields(record) if provider else {},
            "answer": record.answer,
        }

    # --- pushing to the product ---------------------------------------------------------

    sms_report = staticmethod(aliyun.sms_report)
    voice_report = staticmethod(aliyun.voice_report)

    def card_click(self, out_track_id: str, user_id: str, *, timestamp_ms: int | None = None, secret: str | None = None) -> tuple[bytes, dict]:
        """The body and headers DingTalk posts when `user_id` presses the card's button."""
        secret = secret if secret is not None else self.config.card_callback_secret
        return dingtalk.card_click(secret, out_track_id, user_id, timestamp_ms=timestamp_ms)

    @staticmethod
    def push(url: str, body, headers: dict | None = None, timeout: float = 10) -> tuple[int, object]:
        """POST to the product the way a provider does; returns (status, parsed answer)."""
        data = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
        request = urllib.request.Request(url, data=data, method="POST", headers={"Content-Type": "application/json", **(headers or {})})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")

    # --- serving ----------------------------------------------------------------------

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        split = urllib.parse.urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        if split.path.startswith(CONTROL):
            _reply(handler, *self._control(handler.command, split, body))
            return
        headers = {k.lower(): v for k, v in handler.headers.items()}
        query = dict(urllib.parse.parse_qsl(split.query, keep_blank_values=True))
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = None
        provider, api = None, headers.get("x-acs-action", split.path)
        for candidate in self._providers.values():
            if (name := candidate.api_of(split.path, headers)) is not None:
                provider, api = candidate, name
                break
        record = Recorded(handler.command, split.path, api, query, headers, body, parsed, provider=provider.name if provider else "")
        with self._lock:
            self.requests.append(record)
            outage = self._outage
        try:
            if provider is None:
                record.note = "unknown api"
                answer = Answer(404, {"code": "NotFound", "message": f"no such API {split.path}"})
            elif outage is not None and outage.active() and outage.covers(provider.name):
                record.outage = outage.mode
                if outage.mode == "hang":
                    outage.hold()
                answer = provider.unavailable()
            else:
                answer = provider.serve(record, split.query)
            record.status, record.answer = answer.status, answer.body
            if answer.hang:
                # The request has been processed; the answer never comes in time.
                self._stopping.wait(self.config.hang_seconds)
            _reply(handler, answer.status, answer.body)
        finally:
            record.finished.set()

    def _control(self, method: str, split, body: bytes) -> tuple[int, object]:
        """GET /_control/calls[?api=…], GET and POST /_control/outage. Not recorded as calls."""
        name = split.path[len(CONTROL) :].strip("/")
        if (method, name) == ("GET", "calls"):
            api = dict(urllib.parse.parse_qsl(split.query)).get("api")
            return 200, {
                "accepted": [self.describe(r) for r in self.accepted(api)],
                "outage": [self.describe(r) for r in self.outage_calls(api)],
            }
        if (method, name) == ("GET", "outage"):
            return 200, {"outage": self.outage_state()}
        if (method, name) == ("POST", "outage"):
            try:
                request = json.loads(body or b"null")
                if not isinstance(request, dict) or "mode" not in request:
                    raise ValueError('the body must be a JSON object with "mode" (null ends the outage)')
                if unknown := set(request) - {"mode", "provider", "seconds"}:
                    raise ValueError(f"unknown fields {sorted(unknown)}")
                state = self.outage(request["mode"], provider=request.get("provider"), seconds=request.get("seconds"))
            except ValueError as error:
                return 400, {"error": str(error)}
            return 200, {"outage": state}
        return 404, {"error": f"no control {method} {split.path}: GET /_control/calls, GET or POST /_control/outage"}


def _reply(handler: BaseHTTPRequestHandler, status: int, body) -> None:
    payload = json.dumps(body, ensure_ascii=False).encode()
    try:
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json;charset=utf-8")
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)
    except OSError:
        pass  # the client gave up (a timeout)


def _handler(provider: FakeProvider):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # The status line and headers go out in one write, the body in another; with
        # Nagle's algorithm on, the body waits for the client's delayed ACK (~40 ms on
        # Linux), a stall no real provider adds to every request.
        disable_nagle_algorithm = True

        def log_message(self, *args):
            pass

        def do_GET(self):
            provider._serve(self)

        def do_POST(self):
            provider._serve(self)

    return Handler

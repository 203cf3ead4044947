"""What the server and the providers share: the configuration, one recorded request, an
answer, the queue of injected failures, and what every provider offers the server."""

import itertools
import threading
from dataclasses import dataclass, field

FAILURE_MODES = ("5xx", "timeout", "throttle", "permanent", "quota", "invalid_token")


@dataclass
class Config:
    app_key: str = "fake-app-key"
    app_secret: str = "fake-app-secret"
    access_key_id: str = "fake-access-key-id"
    access_key_secret: str = "fake-access-key-secret"
    card_callback_secret: str = "fake-card-secret"
    # Custom robots: access_token → signing secret.
    robots: dict = field(default_factory=lambda: {"fake-robot-token": "fake-robot-secret"})
    # DingTalk userIds that DING reports in failedList (e.g. left the company).
    unknown_user_ids: set = field(default_factory=set)
    # How long a "timeout" request hangs; longer than the client's read timeout.
    hang_seconds: float = 30.0


@dataclass
class Recorded:
    method: str
    path: str
    api: str  # the DingTalk path, the Alibaba Cloud action, "robot/send", or "webhook"
    query: dict
    headers: dict  # lower-case names
    body: bytes
    json: object = None
    status: int = 0
    answer: object = None
    injected: str = ""  # the failure mode served, if any
    note: str = ""  # "unknown api", or "duplicate" when a key made the provider ignore a repeat
    provider: str = ""  # "dingtalk", "aliyun", "webhook"; "" when no provider knows the path
    # The provider took the request as something new (a message sent, a card created), even
    # if its answer was held back; what an outside test counts against the product's outbox.
    accepted: bool = False
    outage: str = ""  # "5xx" or "hang" when an outage answered instead of the provider
    # Set once the answer has been written (or the client had gone): tests wait on it.
    finished: threading.Event = field(default_factory=threading.Event, repr=False, compare=False)


@dataclass
class Answer:
    status: int
    body: object
    # The request was processed, but its answer is held back for Config.hang_seconds, so
    # that the client's read timeout fires after the provider did the work.
    hang: bool = False


class Failures:
    """The failures FakeProvider.fail queued, per API; a provider takes one per request."""

    def __init__(self):
        self._lock = threading.Lock()
        self._queues: dict[str, list[list]] = {}  # api → [[mode, times left], …]

    def add(self, api: str, mode: str, times: int) -> None:
        if mode not in FAILURE_MODES:
            raise ValueError(f"mode must be one of {FAILURE_MODES}")
        with self._lock:
            self._queues.setdefault(api, []).append([mode, times])

    def take(self, api: str) -> str:
        """The failure mode to serve to this request of `api`, or ""."""
        with self._lock:
            queue = self._queues.get(api) or []
            if not queue:
                return ""
            queue[0][1] -= 1
            mode = queue[0][0]
            if queue[0][1] <= 0:
                queue.pop(0)
            return mode


class Provider:
    """One provider's APIs on the shared server."""

    name = ""

    def __init__(self, config: Config, failures: Failures):
        self.config = config
        self.failures = failures
        self.lock = threading.Lock()
        self._ids = itertools.count(1)

    def next_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):06d}"

    def api_of(self, path: str, headers: dict) -> str | None:
        """The API a request is for, or None when the request is not for this provider."""
        raise NotImplementedError

    def serve(self, record: Recorded, raw_query: str) -> Answer:
        """Answer the request as the provider would, and set record.accepted when it took it."""
        raise NotImplementedError

    def unavailable(self) -> Answer:
        """The provider's own answer while it is down: an HTTP 503 in its error shape."""
        raise NotImplementedError

    def key_fields(self, record: Recorded) -> dict:
        """The fields of a request that identify its message (keys, receivers, text)."""
        raise NotImplementedError


def pick(source, names: tuple) -> dict:
    """The entries of `source` (a parsed body or query) named in `names` that are present."""
    if not isinstance(source, dict):
        return {}
    return {name: source[name] for name in names if name in source}

"""What every transport shares: the error it raises, what it returns, and the HTTP client.

All outbound HTTP goes through `http_request`, so that tests see every request the
product makes, so that every request has a timeout, and so that all the requests of one
send (a token, then the message) share one time budget.
"""

import contextlib
import contextvars
import time
from dataclasses import dataclass, field

import requests
from django.conf import settings


class TransportError(Exception):
    """A send that did not succeed.

    permanent: the provider refused for good (bad number, no quota, bad credentials);
        retrying cannot help, the next paging method should be tried.
    ambiguous: the request may have reached the provider (a timeout after it left); a
        channel without an idempotency key must not send it again blindly.
    retry_after: seconds the provider asked us to wait (throttling), if known.
    """

    def __init__(self, message: str, *, permanent: bool = False, ambiguous: bool = False, retry_after: float | None = None):
        super().__init__(message)
        self.message = message
        self.permanent = permanent
        self.ambiguous = ambiguous
        self.retry_after = retry_after


# A gateway in front of the provider gave up waiting (502 Bad Gateway, 504 Gateway Timeout):
# the provider itself may have received and processed the request.
GATEWAY_ERRORS = {502, 504}


@dataclass
class Sent:
    """The provider accepted the message."""

    provider_id: str = ""
    # True when acceptance is the final outcome (no receipt will follow).
    delivered: bool = False
    data: dict = field(default_factory=dict)


_session = requests.Session()

# The monotonic instant by which the current send must be done, or None.
_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar("send_deadline", default=None)


@contextlib.contextmanager
def send_budget(seconds: float):
    """Give every request made inside at most `seconds` in all (a worker is never held long)."""
    token = _deadline.set(time.monotonic() + seconds)
    try:
        yield
    finally:
        _deadline.reset(token)


def _timeouts() -> tuple[float, float]:
    connect, read = settings.NOTIFY_HTTP_CONNECT_TIMEOUT, settings.NOTIFY_HTTP_READ_TIMEOUT
    deadline = _deadline.get()
    if deadline is None:
        return connect, read
    left = deadline - time.monotonic()
    if left <= 0.05:
        # Nothing has left for this request: safe to retry later.
        raise TransportError("the send's time budget ran out before this request")
    return min(connect, left), min(read, left)


def http_request(method: str, url: str, **kwargs) -> requests.Response:
    """Send one HTTP request with the configured timeouts, within the send's budget.

    Returns the response whatever its status; raises TransportError when there is none:
    ambiguous when the request may have left (read timeout, connection lost mid-way, an
    answer whose body cannot be read), not ambiguous when it surely did not (connection
    refused, connect timeout, no budget left).
    """
    kwargs.setdefault("timeout", _timeouts())
    # Errors name the host only: the URL's query (tokens, signatures, phone numbers) and the
    # library's own text (which repeats the URL) stay out of the outbox and the timeline.
    host = _host(url)
    try:
        return _session.request(method, url, **kwargs)
    except requests.ConnectTimeout as exc:
        raise TransportError(f"could not connect to {host} in time") from exc
    except requests.ReadTimeout as exc:
        raise TransportError(f"no answer from {host} in time", ambiguous=True) from exc
    except requests.ConnectionError as exc:
        # A refused or unresolvable connection never carried the request; anything else
        # (reset, remote closed) may have.
        reason = repr(exc)
        if "NameResolutionError" in reason:
            raise TransportError(f"could not resolve {host}") from exc
        if "NewConnectionError" in reason:
            raise TransportError(f"could not connect to {host} (connection refused)") from exc
        raise TransportError(f"the connection to {host} broke off", ambiguous=True) from exc
    except (requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError) as exc:
        # The request was sent and answered; only the answer's body broke on the way back.
        raise TransportError(f"unreadable answer from {host}", ambiguous=True) from exc
    except requests.RequestException as exc:
        raise TransportError(f"request to {host} failed ({type(exc).__name__})", permanent=True) from exc


def _host(url: str) -> str:
    from urllib.parse import urlsplit

    return urlsplit(url).netloc or url


def json_of(response: requests.Response) -> dict:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {"_": data}

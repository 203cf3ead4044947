"""The DingTalk app's access token, shared by every worker through the cache, and the call
that every new-style API makes with it.

Raises TransportError; see base.TransportError for what its flags mean.
"""

import logging

from django.conf import settings
from django.core.cache import cache

from ..base import GATEWAY_ERRORS, TransportError, http_request, json_of

log = logging.getLogger(__name__)

# DingTalk says the token lives 7,200 s; renew well before, since workers share it.
TOKEN_MARGIN = 300

# New-API error codes and what they mean for us.
THROTTLED = {"Forbidden.AccessDenied.QpsLimitForAppkeyAndApi", "Forbidden.AccessDenied.QpsLimitForApi", "Throttling"}
PERMANENT = {"ding.serverquota.insufficient", "invalidClientIdOrSecret", "Forbidden.AccessDenied.AccessTokenPermissionDenied"}


def configured() -> bool:
    return bool(settings.DINGTALK_APP_KEY and settings.DINGTALK_APP_SECRET)


def _token_key() -> str:
    return f"dingtalk:token:{settings.DINGTALK_API_BASE}:{settings.DINGTALK_APP_KEY}"


def access_token(*, refresh: bool = False) -> str:
    """The app's access token, from the shared cache unless `refresh`.

    Raises TransportError, never ambiguous: no message goes with the token request.
    """
    if not refresh:
        token = _cached(cache.get, _token_key())
        if token:
            return token
    try:
        response = http_request(
            "POST",
            f"{settings.DINGTALK_API_BASE}/v1.0/oauth2/accessToken",
            json={"appKey": settings.DINGTALK_APP_KEY, "appSecret": settings.DINGTALK_APP_SECRET},
        )
    except TransportError as error:
        # Whatever became of the token request, the message it was for has not left: the
        # send is safe to retry, even on a channel without an idempotency key.
        raise TransportError(
            f"DingTalk could not get an access token: {error.message}", retry_after=error.retry_after
        ) from error
    data = json_of(response)
    if response.status_code != 200 or not data.get("accessToken"):
        raise _error(response, data, doing="get an access token", carries_message=False)
    ttl = max(int(data.get("expireIn", 7200)) - TOKEN_MARGIN, 60)
    _cached(cache.set, _token_key(), data["accessToken"], ttl)
    return data["accessToken"]


def _cached(operation, *args):
    """The token cache is a saving, not a dependency: with Redis down (restarting), go on
    without it. Failing here would leave a row whose request never left looking ambiguous."""
    try:
        return operation(*args)
    except Exception:
        log.warning("the DingTalk token cache is unavailable; going on without it", exc_info=True)
        return None


def _error(response, data: dict, *, doing: str, carries_message: bool = True) -> TransportError:
    code = str(data.get("code") or "")
    message = f"DingTalk could not {doing}: HTTP {response.status_code} {code} {data.get('message', '')}".strip()
    if code in THROTTLED or response.status_code == 429:
        return TransportError(message, retry_after=2)
    if code in PERMANENT:
        return TransportError(message, permanent=True)
    if response.status_code >= 500:
        # Behind a gateway's 502/504 DingTalk may have sent the message (rung the phone).
        return TransportError(message, ambiguous=carries_message and response.status_code in GATEWAY_ERRORS)
    if code == "InvalidAuthentication":
        return TransportError(message)  # still refused after a fresh token: try again later
    return TransportError(message, permanent=True)


def call(path: str, body: dict, *, doing: str, method: str = "POST", done_codes: frozenset = frozenset()) -> dict:
    """Call a new-style API; on InvalidAuthentication get a fresh token and try once more.

    Returns the answer's JSON. An error whose code is in `done_codes` (DingTalk saying that
    an earlier request with the same key did this already) is returned as an answer too.
    """
    url = f"{settings.DINGTALK_API_BASE}{path}"
    for refresh in (False, True):
        headers = {"x-acs-dingtalk-access-token": access_token(refresh=refresh)}
        response = http_request(method, url, json=body, headers=headers)
        data = json_of(response)
        if response.status_code < 400 or data.get("code") in done_codes:
            return data
        if data.get("code") == "InvalidAuthentication" and not refresh:
            continue
        raise _error(response, data, doing=doing)
    raise AssertionError("unreachable")

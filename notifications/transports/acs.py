"""Alibaba Cloud RPC calls signed with ACS3-HMAC-SHA256 (the current SDK default).

Parameters travel in the query string with an empty body; the signature covers the
method, path, sorted query, the host and x-acs-* headers, and the body's hash.
"""

import hashlib
import hmac
import json
import secrets
import urllib.parse

from django.conf import settings

from django.utils import timezone

from .base import GATEWAY_ERRORS, TransportError, http_request, json_of

VERSION = "2017-05-25"
ALGORITHM = "ACS3-HMAC-SHA256"

THROTTLED = {"isv.BUSINESS_LIMIT_CONTROL", "Throttling", "Throttling.User", "Throttling.Api", "ServiceUnavailable"}
TRANSIENT = {"InternalError", "isp.SYSTEM_ERROR", "isp.RAM_PERMISSION_DENY_TEMP"}


def configured() -> bool:
    return bool(settings.ALIYUN_ACCESS_KEY_ID and settings.ALIYUN_ACCESS_KEY_SECRET)


def pe(value: str) -> str:
    """RFC 3986 percent-encoding: only A-Z a-z 0-9 - _ . ~ stay as they are."""
    return urllib.parse.quote(str(value), safe="-_.~")


def sign(*, method: str, host: str, action: str, params: dict, access_key_id: str, secret: str, date: str, nonce: str) -> dict:
    """The request headers, Authorization included, for an RPC call with `params` in the query."""
    body_hash = hashlib.sha256(b"").hexdigest()
    headers = {
        "host": host,
        "x-acs-action": action,
        "x-acs-version": VERSION,
        "x-acs-date": date,
        "x-acs-signature-nonce": nonce,
        "x-acs-content-sha256": body_hash,
    }
    query = "&".join(f"{pe(k)}={pe(v)}" for k, v in sorted(params.items()))
    names = sorted(headers)
    canonical_headers = "".join(f"{name}:{headers[name].strip()}\n" for name in names)
    signed_headers = ";".join(names)
    canonical = "\n".join([method, "/", query, canonical_headers, signed_headers, body_hash])
    string_to_sign = f"{ALGORITHM}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    signature = hmac.new(secret.encode(), string_to_sign.encode(), hashlib.sha256).hexdigest()
    headers["Authorization"] = f"{ALGORITHM} Credential={access_key_id},SignedHeaders={signed_headers},Signature={signature}"
    return headers


def call(endpoint: str, action: str, params: dict) -> dict:
    """POST one RPC action; returns the body when Code is OK, raises TransportError otherwise."""
    host = urllib.parse.urlsplit(endpoint).netloc
    params = {k: v for k, v in params.items() if v not in (None, "")}
    headers = sign(
        method="POST",
        host=host,
        action=action,
        params=params,
        access_key_id=settings.ALIYUN_ACCESS_KEY_ID,
        secret=settings.ALIYUN_ACCESS_KEY_SECRET,
        date=timezone.now().strftime("%Y-%m-%dT%H:%M:%SZ"),
        nonce=secrets.token_hex(16),
    )
    query = "&".join(f"{pe(k)}={pe(v)}" for k, v in sorted(params.items()))
    response = http_request("POST", f"{endpoint}/?{query}", headers=headers, data=b"")
    data = json_of(response)
    code = str(data.get("Code") or "")
    if response.status_code == 200 and code == "OK":
        return data
    message = f"Alibaba Cloud {action}: HTTP {response.status_code} {code} {data.get('Message', '')}".strip()
    if code in THROTTLED:
        return _raise(TransportError(message, retry_after=60 if code == "isv.BUSINESS_LIMIT_CONTROL" else 2))
    if code in TRANSIENT or response.status_code >= 500:
        # Behind a gateway's 502/504 the SMS may have gone out or the phone be ringing.
        return _raise(TransportError(message, ambiguous=response.status_code in GATEWAY_ERRORS))
    # Bad signature or key, bad number, template, day limit, no balance: retrying cannot help.
    return _raise(TransportError(message, permanent=True))


def _raise(error: TransportError):
    raise error


def template_param(values: dict) -> str:
    return json.dumps({k: str(v) for k, v in values.items()}, ensure_ascii=False, separators=(",", ":"))

"""What providers send us: check-in card clicks and SMS / voice receipts.

Bad input gets a 4xx with a sentence, never a 500: a provider that sees 5xx retries.
"""

import base64
import hashlib
import hmac
import json
import logging
import math

from django.conf import settings
from django.http import Http404, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from incidents.errors import ServiceError
from django.utils import timezone

from .outbox import receipts
from .response import group

log = logging.getLogger(__name__)

# DingTalk signs the timestamp only; refuse old ones so a captured click cannot be replayed.
CARD_TIMESTAMP_TOLERANCE_MS = 3600 * 1000


def _not_a_number(name: str):
    raise ValueError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is out of range")
    return value


def parse_json(raw: bytes):
    """Parse a request body as strict JSON.

    Raises ValueError for anything but JSON: NaN and Infinity (which Python accepts and the
    database's JSON check refuses), numbers too large for a float, and nesting too deep to
    parse (RecursionError otherwise).
    """
    try:
        return json.loads(raw, parse_constant=_not_a_number, parse_float=_finite)
    except RecursionError:
        raise ValueError("the JSON is nested too deeply") from None


def _refuse(status: int, message: str) -> JsonResponse:
    return JsonResponse({"message": message}, status=status, json_dumps_params={"ensure_ascii": False})


def card_signature(secret: str, timestamp: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), timestamp.encode(), hashlib.sha256).digest()).decode()


@csrf_exempt
@require_POST
def dingtalk_card_callback(request):
    """A click on the check-in card (registered with callbackRouteKey, callbackType HTTP)."""
    secret = settings.DINGTALK_CARD_CALLBACK_SECRET
    if not secret:
        return _refuse(404, "DingTalk card callbacks are not configured.")
    timestamp = request.headers.get("x-ddpaas-signature-timestamp", "")
    signature = request.headers.get("x-ddpaas-signature", "")
    if not timestamp or not signature:
        return _refuse(401, "Missing x-ddpaas-signature or x-ddpaas-signature-timestamp.")
    # Bytes: compare_digest refuses str with non-ASCII characters, which anyone can send.
    if not hmac.compare_digest(card_signature(secret, timestamp).encode(), signature.encode("utf-8", "replace")):
        return _refuse(401, "The signature does not match.")
    try:
        skew = abs(int(timezone.now().timestamp() * 1000) - int(timestamp))
    except ValueError:
        return _refuse(401, "The signature timestamp is not a number of milliseconds.")
    if skew > CARD_TIMESTAMP_TOLERANCE_MS:
        return _refuse(401, "The signature timestamp is more than an hour off.")
    try:
        body = parse_json(request.body)
    except ValueError as error:
        return _refuse(400, f"The body is not JSON: {error}.")
    if not isinstance(body, dict):
        return _refuse(400, "The body must be a JSON object.")
    out_track_id, user_id = body.get("outTrackId"), body.get("userId")
    if not isinstance(out_track_id, str) or not isinstance(user_id, str) or not out_track_id or not user_id:
        return _refuse(400, "outTrackId and userId are required.")
    try:
        group.card_check_in(out_track_id=out_track_id, user_id=user_id)
    except ServiceError as error:
        return _refuse(error.status_code if error.status_code < 500 else 400, error.message)
    # Only this user's view of the card changes: his button shows that he has checked in.
    return JsonResponse(
        {
            "cardUpdateOptions": {"updatePrivateDataByKey": True},
            "userPrivateData": {"cardParamMap": {"checked_in": "true"}},
        }
    )


RECEIPT_OK = {"code": 0, "msg": "接收成功"}


def _receipt_items(request, secret: str):
    expected = settings.ALIYUN_RECEIPT_SECRET
    if not expected or not hmac.compare_digest(expected.encode(), secret.encode()):
        raise Http404("No such receipt endpoint.")
    try:
        items = parse_json(request.body)
    except ValueError as error:
        return None, _receipt_refusal(f"The body is not JSON: {error}.")
    if isinstance(items, dict):
        items = [items]
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        return None, _receipt_refusal("The body must be a JSON array of receipts.")
    return items, None


def _receipt_refusal(message: str) -> JsonResponse:
    return JsonResponse({"code": 1, "msg": message}, status=400, json_dumps_params={"ensure_ascii": False})


def _receipts(request, secret: str, record) -> JsonResponse:
    items, refusal = _receipt_items(request, secret)
    if refusal is not None:
        return refusal
    for item in items:
        if not item.get("out_id"):
            continue  # sent by something else on the account; nothing of ours to settle
        if not record(item):
            log.info("receipt for unknown out_id %s", item.get("out_id"))
    return JsonResponse(RECEIPT_OK, json_dumps_params={"ensure_ascii": False})


@csrf_exempt
@require_POST
def aliyun_sms_report(request, secret: str):
    return _receipts(request, secret, receipts.sms_report_record)


@csrf_exempt
@require_POST
def aliyun_voice_report(request, secret: str):
    return _receipts(request, secret, receipts.voice_report_record)

"""A loopback stand-in for DingTalk and Alibaba Cloud, for tests and demos.

It speaks the wire protocols the product uses, checks credentials the way the providers
do (DingTalk access tokens issued from appKey/appSecret, custom-robot signatures,
Alibaba Cloud ACS3-HMAC-SHA256 recomputed from the request as received), answers with
the providers' error shapes, records every request, and fails on demand.

Standalone (no Django needed):

    python -m notifications.fakeprovider --port 8481

then point DINGTALK_API_BASE, DINGTALK_OAPI_BASE, ALIYUN_SMS_ENDPOINT and
ALIYUN_VOICE_ENDPOINT at http://127.0.0.1:8481 and use the credentials it prints.

In tests:

    with FakeProvider() as fake:
        fake.fail("SendSms", "throttle", times=2)
        ...
        assert fake.calls("SendSms")[0].query["OutId"] == ...
"""

import argparse
import base64
import hashlib
import hmac
import itertools
import json
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ACS3 = "ACS3-HMAC-SHA256"
FAILURE_MODES = ("5xx", "timeout", "throttle", "permanent", "quota", "invalid_token")


@dataclass
class Recorded:
    method: str
    path: str
    api: str  # the DingTalk path, the Alibaba Cloud action, or "robot/send"
    query: dict
    headers: dict  # lower-case names
    body: bytes
    json: object = None
    status: int = 0
    answer: object = None
    injected: str = ""  # the failure mode served, if any
    note: str = ""


@dataclass
class _Failure:
    mode: str
    times: int


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


def _pe(value: str) -> str:
    return urllib.parse.quote(str(value), safe="-_.~")


class FakeProvider:
    def __init__(self, config: Config | None = None, *, host: str = "127.0.0.1", port: int = 0):
        self.config = config or Config()
        self.requests: list[Recorded] = []
        self._lock = threading.Lock()
        self._failures: dict[str, list[_Failure]] = {}
        self._tokens: set[str] = set()
        self._ids = itertools.count(1)
        self._groups: dict[str, dict] = {}  # uuid → group
        self._cards: dict[str, dict] = {}  # outTrackId → card
        self._robot_uuids: set[str] = set()
        self._released = threading.Event()
        self._server = ThreadingHTTPServer((host, port), self._handler())
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
        self._released.set()  # let hanging requests finish
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
        ("SendSms"), or "robot/send" for the custom robot.
        """
        if mode not in FAILURE_MODES:
            raise ValueError(f"mode must be one of {FAILURE_MODES}")
        with self._lock:
            self._failures.setdefault(api, []).append(_Failure(mode, times))

    def expire_tokens(self) -> None:
        """Every DingTalk access token issued so far stops working."""
        with self._lock:
            self._tokens.clear()

    def calls(self, api: str | None = None) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if api is None or r.api == api]

    def unexpected(self) -> list[Recorded]:
        """Requests for APIs this server does not know: the product asked for something wrong."""
        return [r for r in self.calls() if r.note == "unknown api"]

    # --- pushing to the product ---------------------------------------------------------

    @staticmethod
    def sms_report(out_id: str, phone: str = "", *, success: bool = True, err_code: str = "DELIVERED", biz_id: str = "") -> dict:
        return {
            "phone_number": phone,
            "send_time": time.strftime("%Y-%m-%d %H:%M:%S"),
            "report_time": time.strftime("%Y-%m-%d %H:%M:%S"),
            "success": success,
            "err_code": err_code if not success or err_code else "DELIVERED",
            "err_msg": "用户接收成功" if success else "用户接收失败",
            "sms_size": "1",
            "biz_id": biz_id,
            "out_id": out_id,
        }

    @staticmethod
    def voice_report(out_id: str, *, answered: bool = True, call_id: str = "") -> dict:
        now = time.strftime("%Y-%m-%d %H:%M:%S")
        return {
            "call_id": call_id,
            "start_time": now if answered else "",
            "end_time": now,
            "duration": "12" if answered else "0",
            "status_code": "200000" if answered else "200005",
            "status_msg": "用户听音挂断" if answered else "用户未接",
            "out_id": out_id,
        }

    def card_click(self, out_track_id: str, user_id: str, *, timestamp_ms: int | None = None, secret: str | None = None) -> tuple[bytes, dict]:
        """The body and headers DingTalk posts when `user_id` presses the card's button."""
        timestamp = str(timestamp_ms if timestamp_ms is not None else int(time.time() * 1000))
        key = (secret if secret is not None else self.config.card_callback_secret).encode()
        signature = base64.b64encode(hmac.new(key, timestamp.encode(), hashlib.sha256).digest()).decode()
        content = {"cardPrivateData": {"actionIds": ["check_in"], "params": {"action": "check_in"}}}
        body = {
            "type": "actionCallback",
            "outTrackId": out_track_id,
            "corpId": "dingfakecorp",
            "userId": user_id,
            "content": json.dumps(content),
        }
        headers = {"x-ddpaas-signature-timestamp": timestamp, "x-ddpaas-signature": signature}
        return json.dumps(body).encode(), headers

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

    def _handler(self):
        provider = self

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

    def _serve(self, handler) -> None:
        split = urllib.parse.urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in handler.headers.items()}
        query = dict(urllib.parse.parse_qsl(split.query, keep_blank_values=True))
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = None
        if split.path.startswith("/v1.0/"):
            api = split.path
        elif split.path == "/robot/send":
            api = "robot/send"
        elif split.path.startswith("/hooks/"):
            api = "webhook"
        else:
            api = headers.get("x-acs-action", split.path)
        record = Recorded(handler.command, split.path, api, query, headers, body, parsed)
        with self._lock:
            self.requests.append(record)
        if api.startswith("/v1.0/"):
            status, answer, hang = self._dingtalk(record)
        elif api == "robot/send":
            status, answer, hang = self._custom_robot(record)
        elif api == "webhook":
            # A generic receiver for the product's outgoing webhook; tests check its signature.
            mode = self._take_failure("webhook")
            record.injected = mode
            status = {"5xx": 503, "permanent": 410, "throttle": 429}.get(mode, 200)
            answer, hang = {"ok": status == 200}, mode == "timeout"
        elif split.path == "/" and "x-acs-action" in headers:
            status, answer, hang = self._aliyun(record, split.query)
        else:
            record.note = "unknown api"
            status, answer, hang = 404, {"code": "NotFound", "message": f"no such API {split.path}"}, False
        record.status, record.answer = status, answer
        if hang:
            # The request has been processed; the answer never comes in time.
            self._released.wait(self.config.hang_seconds)
        payload = json.dumps(answer, ensure_ascii=False).encode()
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", "application/json;charset=utf-8")
            handler.send_header("Content-Length", str(len(payload)))
            handler.end_headers()
            handler.wfile.write(payload)
        except OSError:
            pass  # the client gave up (a timeout)

    def _take_failure(self, api: str) -> str:
        with self._lock:
            queue = self._failures.get(api) or []
            if not queue:
                return ""
            failure = queue[0]
            failure.times -= 1
            if failure.times <= 0:
                queue.pop(0)
            return failure.mode

    def _next_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):06d}"

    # --- DingTalk new API ---------------------------------------------------------------

    def _dt_error(self, status: int, code: str, message: str):
        return status, {"code": code, "message": message, "requestid": self._next_id("req")}, False

    def _dingtalk(self, r: Recorded):
        body = r.json if isinstance(r.json, dict) else {}
        if r.api == "/v1.0/oauth2/accessToken":
            if body.get("appKey") != self.config.app_key or body.get("appSecret") != self.config.app_secret:
                return self._dt_error(400, "invalidClientIdOrSecret", "无效的clientId或者clientSecret")
            token = self._next_id("fake-token-")
            with self._lock:
                self._tokens.add(token)
            return 200, {"accessToken": token, "expireIn": 7200}, False
        mode = self._take_failure(r.api)
        if mode == "invalid_token":
            self.expire_tokens()
        with self._lock:
            token_ok = r.headers.get("x-acs-dingtalk-access-token") in self._tokens
        if not token_ok:
            return self._dt_error(401, "InvalidAuthentication", "不合法的access_token")
        r.injected = mode if mode != "invalid_token" else ""
        if mode == "5xx":
            return self._dt_error(500, "ServiceUnavailable", "The request has failed due to a temporary failure of the server.")
        if mode == "throttle":
            return self._dt_error(403, "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi", "调用该接口触发限流")
        if mode == "permanent":
            return self._dt_error(400, "invalidParameter", "参数错误")
        if mode == "quota":
            return self._dt_error(400, "ding.serverquota.insufficient", "DING配额不足")
        routes = {
            "/v1.0/im/sceneGroup/create": self._scene_group_create,
            "/v1.0/im/sceneGroup/member/add": self._scene_group_member_add,
            "/v1.0/robot/groupMessages/send": self._group_message,
            "/v1.0/card/instances/createAndDeliver": self._card,
            "/v1.0/card/callbacks/register": self._card_register,
            "/v1.0/robot/ding/send": self._ding,
            "/v1.0/conference/videoConferences": self._conference,
        }
        route = routes.get(r.api)
        if route is None:
            r.note = "unknown api"
            return 404, {"code": "InvalidAction.NotFound", "message": f"no API {r.api}", "requestid": "-"}, False
        status, answer = route(body)
        return status, answer, mode == "timeout"

    def _missing(self, body: dict, *names):
        missing = [n for n in names if body.get(n) in (None, "", [])]
        if missing:
            return 400, {"code": "MissingParameter", "message": f"缺少参数 {', '.join(missing)}", "requestid": "-"}
        return None

    def _scene_group_create(self, body):
        problem = self._missing(body, "title", "template_id", "owner_user_id")
        if problem:
            return problem
        if len(body["title"]) > 30:
            return 400, {"code": "invalidParameter", "message": "title too long", "requestid": "-"}
        key = body.get("uuid") or self._next_id("anon")
        with self._lock:
            group = self._groups.get(key)
            if group is None:
                members = [u for u in (body.get("user_ids") or "").split(",") if u]
                group = {
                    "open_conversation_id": self._next_id("cidFake"),
                    "chat_id": self._next_id("chatFake"),
                    "title": body["title"],
                    "members": [body["owner_user_id"], *members],
                }
                self._groups[key] = group
        return 200, {"open_conversation_id": group["open_conversation_id"], "chat_id": group["chat_id"]}

    def _group_by_cid(self, cid: str):
        with self._lock:
            return next((g for g in self._groups.values() if g["open_conversation_id"] == cid), None)

    def _scene_group_member_add(self, body):
        problem = self._missing(body, "open_conversation_id", "user_ids")
        if problem:
            return problem
        group = self._group_by_cid(body["open_conversation_id"])
        if group is None:
            return 400, {"code": "invalidParameter", "message": "群不存在", "requestid": "-"}
        with self._lock:
            for uid in body["user_ids"].split(","):
                if uid and uid not in group["members"]:
                    group["members"].append(uid)
        return 200, {"success": True}

    def _group_message(self, body):
        problem = self._missing(body, "robotCode", "openConversationId", "msgKey", "msgParam")
        if problem:
            return problem
        try:
            param = json.loads(body["msgParam"])
        except (TypeError, ValueError):
            return 400, {"code": "invalidParameter", "message": "msgParam must be a JSON string", "requestid": "-"}
        if len(body["msgParam"].encode()) > 15000 or not isinstance(param, dict):
            return 400, {"code": "invalidParameter", "message": "msgParam too long", "requestid": "-"}
        return 200, {"processQueryKey": self._next_id("pqk")}

    def _card(self, body):
        problem = self._missing(body, "cardTemplateId", "outTrackId", "openSpaceId", "cardData")
        if problem:
            return problem
        if not str(body["openSpaceId"]).startswith("dtv1.card//IM_GROUP."):
            return 400, {"code": "invalidParameter", "message": "openSpaceId", "requestid": "-"}
        cid = body["openSpaceId"].split("IM_GROUP.", 1)[1]
        with self._lock:
            card = self._cards.setdefault(body["outTrackId"], {"carrierId": self._next_id("carrier"), "body": body})
        result = {
            "outTrackId": body["outTrackId"],
            "deliverResults": [{"spaceType": "IM_GROUP", "spaceId": cid, "success": True, "carrierId": card["carrierId"]}],
        }
        return 200, {"success": True, "result": result}

    def _card_register(self, body):
        problem = self._missing(body, "callbackRouteKey", "callbackUrl")
        if problem:
            return problem
        return 200, {"success": True, "result": {"callbackUrl": body["callbackUrl"], "apiSecret": body.get("apiSecret", "")}}

    def _ding(self, body):
        problem = self._missing(body, "robotCode", "remindType", "receiverUserIdList", "content")
        if problem:
            return problem
        if body["remindType"] not in (1, 2, 3):
            return 400, {"code": "invalidParameter", "message": "remindType", "requestid": "-"}
        receivers = body["receiverUserIdList"]
        if body["remindType"] in (2, 3) and len(receivers) > 20:
            return 400, {"code": "invalidParameter", "message": "too many receivers", "requestid": "-"}
        failed = {uid: "user not found" for uid in receivers if uid in self.config.unknown_user_ids}
        return 200, {"openDingId": self._next_id("ding"), "failedList": failed}

    def _conference(self, body):
        problem = self._missing(body, "userId", "confTitle")
        if problem:
            return problem
        conference = self._next_id("conf")
        return 200, {
            "conferenceId": conference,
            "externalLinkUrl": f"https://meeting.dingtalk.com/j/{conference}",
            "roomCode": conference[-6:],
            "phoneNumbers": ["+861057680000"],
        }

    # --- DingTalk custom robot (old API) ---------------------------------------------

    def _custom_robot(self, r: Recorded):
        secret = self.config.robots.get(r.query.get("access_token", ""))
        if secret is None:
            return 200, {"errcode": 300001, "errmsg": "token is not exist"}, False
        timestamp = r.query.get("timestamp", "")
        expected = base64.b64encode(
            hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256).digest()
        ).decode()
        if not hmac.compare_digest(expected, r.query.get("sign", "")):
            return 200, {"errcode": 310000, "errmsg": "sign not match, more: [https://ding-doc.dingtalk.com/doc#/serverapi2/qf2nxq]"}, False
        if not timestamp.isdigit() or abs(int(timestamp) - time.time() * 1000) > 3600 * 1000:
            return 200, {"errcode": 310000, "errmsg": "invalid timestamp"}, False
        mode = self._take_failure("robot/send")
        r.injected = mode
        if mode == "5xx":
            return 500, {"errcode": -1, "errmsg": "系统繁忙"}, False
        if mode == "throttle":
            return 200, {"errcode": 410100, "errmsg": "发送速度太快而限流"}, False
        if mode in ("permanent", "quota"):
            return 200, {"errcode": 400013, "errmsg": "群已被解散"}, False
        body = r.json if isinstance(r.json, dict) else {}
        uuid = body.get("msgUuid")
        if uuid:
            with self._lock:
                duplicate = uuid in self._robot_uuids
                self._robot_uuids.add(uuid)
            r.note = "duplicate" if duplicate else ""
        return 200, {"errcode": 0, "errmsg": "ok"}, mode == "timeout"

    # --- Alibaba Cloud RPC (ACS3-HMAC-SHA256) -------------------------------------------

    def _acs_error(self, status: int, code: str, message: str):
        return status, {
            "RequestId": self._next_id("REQ-"),
            "Message": message,
            "Recommend": f"https://api.aliyun.com/troubleshoot?q={code}",
            "HostId": "dysmsapi.aliyuncs.com",
            "Code": code,
        }, False

    def _aliyun(self, r: Recorded, raw_query: str):
        problem = self._acs_verify(r, raw_query)
        if problem:
            return problem
        mode = self._take_failure(r.api)
        r.injected = mode
        if mode == "5xx":
            return self._acs_error(503, "ServiceUnavailable", "The request has failed due to a temporary failure of the server.")
        if mode == "throttle":
            return 200, {"Code": "isv.BUSINESS_LIMIT_CONTROL", "Message": "触发分钟级流控Permits:1", "RequestId": self._next_id("REQ-")}, False
        if mode == "permanent":
            return 200, {"Code": "isv.MOBILE_NUMBER_ILLEGAL", "Message": "非法手机号", "RequestId": self._next_id("REQ-")}, False
        if mode == "quota":
            return 200, {"Code": "isv.AMOUNT_NOT_ENOUGH", "Message": "账户余额不足", "RequestId": self._next_id("REQ-")}, False
        q = r.query
        if r.api == "SendSms":
            for name in ("PhoneNumbers", "SignName", "TemplateCode"):
                if not q.get(name):
                    return self._acs_error(400, "MissingParameter", f"{name} is mandatory for this action.")
            if q.get("TemplateParam"):
                try:
                    json.loads(q["TemplateParam"])
                except ValueError:
                    return 200, {"Code": "isv.INVALID_JSON_PARAM", "Message": "JSON参数不合法", "RequestId": "-"}, False
            answer = {"Code": "OK", "Message": "OK", "BizId": self._next_id("9000") + "^0", "RequestId": self._next_id("REQ-")}
        elif r.api == "SingleCallByTts":
            for name in ("CalledNumber", "TtsCode"):
                if not q.get(name):
                    return self._acs_error(400, "MissingParameter", f"{name} is mandatory for this action.")
            if len(q.get("OutId", "").encode()) > 15:
                return 200, {"Code": "isv.INVALID_PARAMETERS", "Message": "OutId too long", "RequestId": "-"}, False
            if q.get("PlayTimes") and q["PlayTimes"] not in ("1", "2", "3"):
                return 200, {"Code": "isv.INVALID_PARAMETERS", "Message": "PlayTimes", "RequestId": "-"}, False
            answer = {"Code": "OK", "Message": "OK", "CallId": self._next_id("1160") + "^" + self._next_id("1000"), "RequestId": self._next_id("REQ-")}
        else:
            r.note = "unknown api"
            return self._acs_error(404, "InvalidAction.NotFound", "Specified api is not found, please check your url and method.")
        return 200, answer, mode == "timeout"

    def _acs_verify(self, r: Recorded, raw_query: str):
        h = r.headers
        auth = h.get("authorization", "")
        if not auth.startswith(ACS3 + " "):
            return self._acs_error(400, "IncompleteSignature", "The request signature does not conform to Aliyun standards.")
        parts = dict(p.strip().split("=", 1) for p in auth[len(ACS3) + 1 :].split(",") if "=" in p)
        if parts.get("Credential") != self.config.access_key_id:
            return self._acs_error(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")
        if h.get("x-acs-version") != "2017-05-25":
            return self._acs_error(400, "InvalidVersion", "Specified parameter Version is not valid.")
        if h.get("x-acs-content-sha256") != hashlib.sha256(r.body).hexdigest():
            return self._acs_error(400, "SignatureDoesNotMatch", "The content hash does not match the body.")
        for name in ("x-acs-date", "x-acs-signature-nonce"):
            if not h.get(name):
                return self._acs_error(400, "MissingParameter", f"{name} is mandatory.")
        signed = parts.get("SignedHeaders", "").split(";")
        if "host" not in signed or not all(n.startswith("x-acs-") or n in ("host", "content-type") for n in signed):
            return self._acs_error(400, "IncompleteSignature", "SignedHeaders must cover host and x-acs-*.")
        if any(n not in h for n in signed):
            return self._acs_error(400, "IncompleteSignature", "A signed header is missing.")
        pairs = urllib.parse.parse_qsl(raw_query, keep_blank_values=True)
        canonical_query = "&".join(f"{_pe(k)}={_pe(v)}" for k, v in sorted(pairs))
        canonical_headers = "".join(f"{n}:{h[n].strip()}\n" for n in sorted(signed))
        canonical = "\n".join(
            [r.method, r.path or "/", canonical_query, canonical_headers, ";".join(sorted(signed)), h["x-acs-content-sha256"]]
        )
        to_sign = f"{ACS3}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
        expected = hmac.new(self.config.access_key_secret.encode(), to_sign.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, parts.get("Signature", "")):
            return self._acs_error(
                400,
                "SignatureDoesNotMatch",
                f"Specified signature is not matched with our calculation. server string to sign is:{to_sign}",
            )
        return None


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Loopback DingTalk and Alibaba Cloud for tests and demos.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8481)
    args = parser.parse_args(argv)
    fake = FakeProvider(host=args.host, port=args.port).start()
    c = fake.config
    print(f"Fake DingTalk + Alibaba Cloud on {fake.url}")
    print(f"  DINGTALK_API_BASE={fake.url} DINGTALK_OAPI_BASE={fake.url}")
    print(f"  ALIYUN_SMS_ENDPOINT={fake.url} ALIYUN_VOICE_ENDPOINT={fake.url}")
    print(f"  DINGTALK_APP_KEY={c.app_key} DINGTALK_APP_SECRET={c.app_secret} DINGTALK_CARD_CALLBACK_SECRET={c.card_callback_secret}")
    print(f"  ALIYUN_ACCESS_KEY_ID={c.access_key_id} ALIYUN_ACCESS_KEY_SECRET={c.access_key_secret}")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        fake.stop()


if __name__ == "__main__":
    main()

"""DingTalk as the product sees it: the new API (access tokens issued from appKey/appSecret,
scene groups, robot messages, the interactive card, DING, video conferences) and the
custom-robot webhook of the old API, with its signature."""

import base64
import hashlib
import hmac
import json
import time

from .base import Answer, Provider, Recorded, pick

# DingTalk's code (HTTP 400) for a createAndDeliver whose outTrackId already made a card.
CARD_EXISTS = "param.cardAlreadyExist"

# What identifies a message in each API's body, for the outside view of accepted requests.
KEY_FIELDS = {
    "/v1.0/im/sceneGroup/create": ("uuid", "title", "owner_user_id", "user_ids"),
    "/v1.0/im/sceneGroup/member/add": ("open_conversation_id", "user_ids"),
    "/v1.0/robot/groupMessages/send": ("openConversationId", "msgKey", "msgParam"),
    "/v1.0/card/instances/createAndDeliver": ("outTrackId", "openSpaceId", "cardData"),
    "/v1.0/card/callbacks/register": ("callbackRouteKey", "callbackUrl"),
    "/v1.0/robot/ding/send": ("remindType", "receiverUserIdList", "content"),
    "/v1.0/conference/videoConferences": ("userId", "confTitle", "inviteUserIds"),
    "robot/send": ("msgUuid", "msgtype", "markdown", "text"),
}


class DingTalk(Provider):
    name = "dingtalk"

    def __init__(self, config, failures):
        super().__init__(config, failures)
        self.tokens: set[str] = set()
        self.groups: dict[str, dict] = {}  # uuid → group
        self.cards: dict[str, dict] = {}  # outTrackId → card
        self.robot_uuids: set[str] = set()
        self._routes = {
            "/v1.0/im/sceneGroup/create": self._scene_group_create,
            "/v1.0/im/sceneGroup/member/add": self._scene_group_member_add,
            "/v1.0/robot/groupMessages/send": self._group_message,
            "/v1.0/card/instances/createAndDeliver": self._card,
            "/v1.0/card/callbacks/register": self._card_register,
            "/v1.0/robot/ding/send": self._ding,
            "/v1.0/conference/videoConferences": self._conference,
        }

    def api_of(self, path, headers):
        if path.startswith("/v1.0/"):
            return path
        if path == "/robot/send":
            return "robot/send"
        return None

    def serve(self, record, raw_query):
        if record.api == "robot/send":
            return self._custom_robot(record)
        return self._new_api(record)

    def unavailable(self):
        return self._error(503, "ServiceUnavailable", "The request has failed due to a temporary failure of the server.")

    def key_fields(self, record):
        return pick(record.json, KEY_FIELDS.get(record.api, ()))

    def expire_tokens(self) -> None:
        with self.lock:
            self.tokens.clear()

    # --- the new API ----------------------------------------------------------------------

    def _error(self, status: int, code: str, message: str) -> Answer:
        return Answer(status, {"code": code, "message": message, "requestid": self.next_id("req")})

    def _new_api(self, r: Recorded) -> Answer:
        body = r.json if isinstance(r.json, dict) else {}
        if r.api == "/v1.0/oauth2/accessToken":
            if body.get("appKey") != self.config.app_key or body.get("appSecret") != self.config.app_secret:
                return self._error(400, "invalidClientIdOrSecret", "无效的clientId或者clientSecret")
            token = self.next_id("fake-token-")
            with self.lock:
                self.tokens.add(token)
            r.accepted = True
            return Answer(200, {"accessToken": token, "expireIn": 7200})
        mode = self.failures.take(r.api)
        if mode == "invalid_token":
            self.expire_tokens()
        with self.lock:
            token_ok = r.headers.get("x-acs-dingtalk-access-token") in self.tokens
        if not token_ok:
            return self._error(401, "InvalidAuthentication", "不合法的access_token")
        r.injected = mode if mode != "invalid_token" else ""
        if mode == "5xx":
            return self._error(500, "ServiceUnavailable", "The request has failed due to a temporary failure of the server.")
        if mode == "throttle":
            return self._error(403, "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi", "调用该接口触发限流")
        if mode == "permanent":
            return self._error(400, "invalidParameter", "参数错误")
        if mode == "quota":
            return self._error(400, "ding.serverquota.insufficient", "DING配额不足")
        route = self._routes.get(r.api)
        if route is None:
            r.note = "unknown api"
            return Answer(404, {"code": "InvalidAction.NotFound", "message": f"no API {r.api}", "requestid": "-"})
        status, answer = route(r, body)
        r.accepted = status == 200 and r.note != "duplicate"
        return Answer(status, answer, hang=mode == "timeout")

    def _missing(self, body: dict, *names):
        missing = [n for n in names if body.get(n) in (None, "", [])]
        if missing:
            return 400, {"code": "MissingParameter", "message": f"缺少参数 {', '.join(missing)}", "requestid": "-"}
        return None

    def _scene_group_create(self, r, body):
        problem = self._missing(body, "title", "template_id", "owner_user_id")
        if problem:
            return problem
        if len(body["title"]) > 30:
            return 400, {"code": "invalidParameter", "message": "title too long", "requestid": "-"}
        key = body.get("uuid") or self.next_id("anon")
        with self.lock:
            group = self.groups.get(key)
            if group is None:
                members = [u for u in (body.get("user_ids") or "").split(",") if u]
                group = {
                    "open_conversation_id": self.next_id("cidFake"),
                    "chat_id": self.next_id("chatFake"),
                    "title": body["title"],
                    "members": [body["owner_user_id"], *members],
                }
                self.groups[key] = group
            else:
                r.note = "duplicate"  # the same uuid: DingTalk answers with the group it made
        return 200, {"open_conversation_id": group["open_conversation_id"], "chat_id": group["chat_id"]}

    def _scene_group_member_add(self, r, body):
        problem = self._missing(body, "open_conversation_id", "user_ids")
        if problem:
            return problem
        with self.lock:
            cid = body["open_conversation_id"]
            group = next((g for g in self.groups.values() if g["open_conversation_id"] == cid), None)
            if group is None:
                return 400, {"code": "invalidParameter", "message": "群不存在", "requestid": "-"}
            for uid in body["user_ids"].split(","):
                if uid and uid not in group["members"]:
                    group["members"].append(uid)
        return 200, {"success": True}

    def _group_message(self, r, body):
        problem = self._missing(body, "robotCode", "openConversationId", "msgKey", "msgParam")
        if problem:
            return problem
        try:
            param = json.loads(body["msgParam"])
        except (TypeError, ValueError):
            return 400, {"code": "invalidParameter", "message": "msgParam must be a JSON string", "requestid": "-"}
        if len(body["msgParam"].encode()) > 15000 or not isinstance(param, dict):
            return 400, {"code": "invalidParameter", "message": "msgParam too long", "requestid": "-"}
        return 200, {"processQueryKey": self.next_id("pqk")}

    def _card(self, r, body):
        problem = self._missing(body, "cardTemplateId", "outTrackId", "openSpaceId", "cardData")
        if problem:
            return problem
        if not str(body["openSpaceId"]).startswith("dtv1.card//IM_GROUP."):
            return 400, {"code": "invalidParameter", "message": "openSpaceId", "requestid": "-"}
        cid = body["openSpaceId"].split("IM_GROUP.", 1)[1]
        with self.lock:
            if body["outTrackId"] in self.cards:
                # One outTrackId is one card: DingTalk refuses to create it twice.
                return 400, {"code": CARD_EXISTS, "message": CARD_EXISTS, "requestid": self.next_id("req")}
            card = self.cards[body["outTrackId"]] = {"carrierId": self.next_id("carrier"), "body": body}
        result = {
            "outTrackId": body["outTrackId"],
            "deliverResults": [{"spaceType": "IM_GROUP", "spaceId": cid, "success": True, "carrierId": card["carrierId"]}],
        }
        return 200, {"success": True, "result": result}

    def _card_register(self, r, body):
        problem = self._missing(body, "callbackRouteKey", "callbackUrl")
        if problem:
            return problem
        return 200, {"success": True, "result": {"callbackUrl": body["callbackUrl"], "apiSecret": body.get("apiSecret", "")}}

    def _ding(self, r, body):
        problem = self._missing(body, "robotCode", "remindType", "receiverUserIdList", "content")
        if problem:
            return problem
        if body["remindType"] not in (1, 2, 3):
            return 400, {"code": "invalidParameter", "message": "remindType", "requestid": "-"}
        receivers = body["receiverUserIdList"]
        if body["remindType"] in (2, 3) and len(receivers) > 20:
            return 400, {"code": "invalidParameter", "message": "too many receivers", "requestid": "-"}
        failed = {uid: "user not found" for uid in receivers if uid in self.config.unknown_user_ids}
        return 200, {"openDingId": self.next_id("ding"), "failedList": failed}

    def _conference(self, r, body):
        problem = self._missing(body, "userId", "confTitle")
        if problem:
            return problem
        conference = self.next_id("conf")
        return 200, {
            "conferenceId": conference,
            "externalLinkUrl": f"https://meeting.dingtalk.com/j/{conference}",
            "roomCode": conference[-6:],
            "phoneNumbers": ["+861057680000"],
        }

    # --- the custom robot (old API) ---------------------------------------------------------

    def _custom_robot(self, r: Recorded) -> Answer:
        secret = self.config.robots.get(r.query.get("access_token", ""))
        if secret is None:
            return Answer(200, {"errcode": 300001, "errmsg": "token is not exist"})
        timestamp = r.query.get("timestamp", "")
        if not hmac.compare_digest(robot_sign(secret, timestamp), r.query.get("sign", "")):
            return Answer(200, {"errcode": 310000, "errmsg": "sign not match, more: [https://ding-doc.dingtalk.com/doc#/serverapi2/qf2nxq]"})
        if not timestamp.isdigit() or abs(int(timestamp) - time.time() * 1000) > 3600 * 1000:
            return Answer(200, {"errcode": 310000, "errmsg": "invalid timestamp"})
        mode = self.failures.take("robot/send")
        r.injected = mode
        if mode == "5xx":
            return Answer(500, {"errcode": -1, "errmsg": "系统繁忙"})
        if mode == "throttle":
            return Answer(200, {"errcode": 410100, "errmsg": "发送速度太快而限流"})
        if mode in ("permanent", "quota"):
            return Answer(200, {"errcode": 400013, "errmsg": "群已被解散"})
        body = r.json if isinstance(r.json, dict) else {}
        uuid = body.get("msgUuid")
        if uuid:
            with self.lock:
                duplicate = uuid in self.robot_uuids
                self.robot_uuids.add(uuid)
            r.note = "duplicate" if duplicate else ""
        r.accepted = r.note != "duplicate"
        return Answer(200, {"errcode": 0, "errmsg": "ok"}, hang=mode == "timeout")


def robot_sign(secret: str, timestamp: str) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def card_click(secret: str, out_track_id: str, user_id: str, *, timestamp_ms: int | None = None) -> tuple[bytes, dict]:
    """The body and headers DingTalk posts when `user_id` presses the card's button."""
    timestamp = str(timestamp_ms if timestamp_ms is not None else int(time.time() * 1000))
    signature = base64.b64encode(hmac.new(secret.encode(), timestamp.encode(), hashlib.sha256).digest()).decode()
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

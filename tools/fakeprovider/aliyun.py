"""Alibaba Cloud SMS (SendSms) and voice (SingleCallByTts): RPC-style requests whose
ACS3-HMAC-SHA256 signature is recomputed from the request as received, and the receipts
(SmsReport, VoiceReport) the providers push back."""

import hashlib
import hmac
import json
import time
import urllib.parse

from .base import Answer, Provider, Recorded, pick

ACS3 = "ACS3-HMAC-SHA256"

# What identifies a message in each action's query, for the outside view of accepted requests.
KEY_FIELDS = {
    "SendSms": ("PhoneNumbers", "TemplateCode", "TemplateParam", "OutId"),
    "SingleCallByTts": ("CalledNumber", "TtsCode", "TtsParam", "OutId"),
}


def _pe(value: str) -> str:
    return urllib.parse.quote(str(value), safe="-_.~")


class Aliyun(Provider):
    name = "aliyun"

    def api_of(self, path, headers):
        if path == "/" and "x-acs-action" in headers:
            return headers["x-acs-action"]
        return None

    def unavailable(self):
        return self._error(503, "ServiceUnavailable", "The request has failed due to a temporary failure of the server.")

    def key_fields(self, record):
        return pick(record.query, KEY_FIELDS.get(record.api, ()))

    def _error(self, status: int, code: str, message: str) -> Answer:
        return Answer(status, {
            "RequestId": self.next_id("REQ-"),
            "Message": message,
            "Recommend": f"https://api.aliyun.com/troubleshoot?q={code}",
            "HostId": "dysmsapi.aliyuncs.com",
            "Code": code,
        })

    def _refusal(self, code: str, message: str) -> Answer:
        """A business error: HTTP 200 with a Code other than OK."""
        return Answer(200, {"Code": code, "Message": message, "RequestId": self.next_id("REQ-")})

    def serve(self, r, raw_query):
        problem = self._verify(r, raw_query)
        if problem:
            return problem
        mode = self.failures.take(r.api)
        r.injected = mode
        if mode == "5xx":
            return self._error(503, "ServiceUnavailable", "The request has failed due to a temporary failure of the server.")
        if mode == "throttle":
            return self._refusal("isv.BUSINESS_LIMIT_CONTROL", "触发分钟级流控Permits:1")
        if mode == "permanent":
            return self._refusal("isv.MOBILE_NUMBER_ILLEGAL", "非法手机号")
        if mode == "quota":
            return self._refusal("isv.AMOUNT_NOT_ENOUGH", "账户余额不足")
        q = r.query
        if r.api == "SendSms":
            for name in ("PhoneNumbers", "SignName", "TemplateCode"):
                if not q.get(name):
                    return self._error(400, "MissingParameter", f"{name} is mandatory for this action.")
            if q.get("TemplateParam"):
                try:
                    json.loads(q["TemplateParam"])
                except ValueError:
                    return self._refusal("isv.INVALID_JSON_PARAM", "JSON参数不合法")
            answer = {"Code": "OK", "Message": "OK", "BizId": self.next_id("9000") + "^0", "RequestId": self.next_id("REQ-")}
        elif r.api == "SingleCallByTts":
            for name in ("CalledNumber", "TtsCode"):
                if not q.get(name):
                    return self._error(400, "MissingParameter", f"{name} is mandatory for this action.")
            if len(q.get("OutId", "").encode()) > 15:
                return self._refusal("isv.INVALID_PARAMETERS", "OutId too long")
            if q.get("PlayTimes") and q["PlayTimes"] not in ("1", "2", "3"):
                return self._refusal("isv.INVALID_PARAMETERS", "PlayTimes")
            call_id = self.next_id("1160") + "^" + self.next_id("1000")
            answer = {"Code": "OK", "Message": "OK", "CallId": call_id, "RequestId": self.next_id("REQ-")}
        else:
            r.note = "unknown api"
            return self._error(404, "InvalidAction.NotFound", "Specified api is not found, please check your url and method.")
        r.accepted = True
        return Answer(200, answer, hang=mode == "timeout")

    def _verify(self, r: Recorded, raw_query: str) -> Answer | None:
        h = r.headers
        auth = h.get("authorization", "")
        if not auth.startswith(ACS3 + " "):
            return self._error(400, "IncompleteSignature", "The request signature does not conform to Aliyun standards.")
        parts = dict(p.strip().split("=", 1) for p in auth[len(ACS3) + 1 :].split(",") if "=" in p)
        if parts.get("Credential") != self.config.access_key_id:
            return self._error(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")
        if h.get("x-acs-version") != "2017-05-25":
            return self._error(400, "InvalidVersion", "Specified parameter Version is not valid.")
        if h.get("x-acs-content-sha256") != hashlib.sha256(r.body).hexdigest():
            return self._error(400, "SignatureDoesNotMatch", "The content hash does not match the body.")
        for name in ("x-acs-date", "x-acs-signature-nonce"):
            if not h.get(name):
                return self._error(400, "MissingParameter", f"{name} is mandatory.")
        signed = parts.get("SignedHeaders", "").split(";")
        if "host" not in signed or not all(n.startswith("x-acs-") or n in ("host", "content-type") for n in signed):
            return self._error(400, "IncompleteSignature", "SignedHeaders must cover host and x-acs-*.")
        if any(n not in h for n in signed):
            return self._error(400, "IncompleteSignature", "A signed header is missing.")
        pairs = urllib.parse.parse_qsl(raw_query, keep_blank_values=True)
        canonical_query = "&".join(f"{_pe(k)}={_pe(v)}" for k, v in sorted(pairs))
        canonical_headers = "".join(f"{n}:{h[n].strip()}\n" for n in sorted(signed))
        canonical = "\n".join(
            [r.method, r.path or "/", canonical_query, canonical_headers, ";".join(sorted(signed)), h["x-acs-content-sha256"]]
        )
        to_sign = f"{ACS3}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
        expected = hmac.new(self.config.access_key_secret.encode(), to_sign.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, parts.get("Signature", "")):
            return self._error(
                400,
                "SignatureDoesNotMatch",
                f"Specified signature is not matched with our calculation. server string to sign is:{to_sign}",
            )
        return None


def sms_report(out_id: str, phone: str = "", *, success: bool = True, err_code: str = "DELIVERED", biz_id: str = "") -> dict:
    """One SmsReport item, as Alibaba Cloud pushes it (in a JSON array) to the receipt URL."""
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


def voice_report(out_id: str, *, answered: bool = True, call_id: str = "") -> dict:
    """One VoiceReport item, as Alibaba Cloud pushes it (in a JSON array) to the receipt URL."""
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

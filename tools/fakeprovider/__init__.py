"""A loopback stand-in for DingTalk and Alibaba Cloud, for tests, demos and fault drills.

It speaks the wire protocols the product uses, checks credentials the way the providers
do (DingTalk access tokens issued from appKey/appSecret, custom-robot signatures,
Alibaba Cloud ACS3-HMAC-SHA256 recomputed from the request as received), answers with
the providers' error shapes, records every request, and fails on demand. It needs no
Django: one module per provider (dingtalk, aliyun, webhook) on one server (server).

Standalone:

    python -m tools.fakeprovider --port 8481

prints the settings that point War Room at it. Another process steers it over HTTP:

    POST /_control/outage  {"mode": "5xx" | "hang" | null, "provider": null | "dingtalk" | "aliyun" | "webhook",
                            "seconds": 120 | null}
    GET  /_control/outage  → {"outage": {"mode", "provider", "seconds_left"} | null}
    GET  /_control/calls[?api=SendSms]  → {"accepted": [...], "outage": [...]}, each request as
         {"api", "path", "provider", "status", "outage", "fields" (keys, receivers, text), "answer"}

In tests:

    with FakeProvider() as fake:
        fake.fail("SendSms", "throttle", times=2)
        fake.outage("hang", provider="dingtalk")
        ...
        assert fake.calls("SendSms")[0].query["OutId"] == ...
"""

from .base import FAILURE_MODES, Config, Recorded
from .server import OUTAGE_MODES, FakeProvider

__all__ = ["FAILURE_MODES", "OUTAGE_MODES", "Config", "FakeProvider", "Recorded"]

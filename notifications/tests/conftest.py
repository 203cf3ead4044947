"""Fixtures for the notifications tests: the loopback provider and the outbound guard.

Every test here runs with `requests` refusing any host but loopback, and a test that used
the fake provider fails if the product called an API the provider does not know.
"""

import urllib.parse

import pytest
import requests.adapters

from tools.fakeprovider import FakeProvider

LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}


@pytest.fixture(autouse=True)
def outbound_guard(monkeypatch):
    """Fail the test on any HTTP request that would leave the machine."""
    real_send = requests.adapters.HTTPAdapter.send
    refused = []

    def guarded_send(self, request, *args, **kwargs):
        host = urllib.parse.urlsplit(request.url).hostname or ""
        if host not in LOOPBACK:
            refused.append(request.url)
            raise AssertionError(f"unexpected outbound request to {request.url}")
        return real_send(self, request, *args, **kwargs)

    monkeypatch.setattr(requests.adapters.HTTPAdapter, "send", guarded_send)
    yield refused
    assert not refused, f"the product tried to reach {refused}"


@pytest.fixture
def fake():
    provider = FakeProvider().start()
    yield provider
    provider.stop()
    unknown = [(r.method, r.path, r.api) for r in provider.unexpected()]
    assert not unknown, f"requests the provider does not know: {unknown}"


@pytest.fixture
def providers(settings, fake):
    """Every provider on, pointed at the fake, with a short read timeout for hangs."""
    c = fake.config
    settings.DINGTALK_API_BASE = settings.DINGTALK_OAPI_BASE = fake.url
    settings.ALIYUN_SMS_ENDPOINT = settings.ALIYUN_VOICE_ENDPOINT = fake.url
    settings.DINGTALK_APP_KEY, settings.DINGTALK_APP_SECRET = c.app_key, c.app_secret
    settings.DINGTALK_ROBOT_CODE = "dingrobotfake"
    settings.DINGTALK_SCENE_TEMPLATE_ID = "tpl-scene"
    settings.DINGTALK_CARD_TEMPLATE_ID = "tpl-card.schema"
    settings.DINGTALK_CARD_CALLBACK_SECRET = c.card_callback_secret
    settings.ALIYUN_ACCESS_KEY_ID, settings.ALIYUN_ACCESS_KEY_SECRET = c.access_key_id, c.access_key_secret
    settings.ALIYUN_SMS_SIGN_NAME = "战情室"
    settings.ALIYUN_SMS_TEMPLATE_CODE = "SMS_000001"
    settings.ALIYUN_TTS_CODE = "TTS_000001"
    settings.ALIYUN_VOICE_SHOW_NUMBER = "057100000000"
    settings.ALIYUN_RECEIPT_SECRET = "receipt-secret"
    settings.NOTIFY_WEBHOOK_URL = f"{fake.url}/hooks/warroom"
    settings.NOTIFY_WEBHOOK_SECRET = "hook-secret"
    settings.NOTIFY_HTTP_READ_TIMEOUT = 0.5
    settings.NOTIFY_MAX_ATTEMPTS = 3
    # No token from an earlier fake on the same port: each test has its own cache keys
    # (the `own_cache_keys` fixture in the root conftest).
    return fake


@pytest.fixture
def gateway():
    """A loopback load balancer that answers every request with `gateway.status` and an HTML page,
    as nginx does when the provider behind it is slow (504) or gone (502)."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            server.seen.append(self.path)
            page = f"<html><body><h1>{server.status}</h1></body></html>".encode()
            self.send_response(server.status)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.status, server.seen = 504, []
    server.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()

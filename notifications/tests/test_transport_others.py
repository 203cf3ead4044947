import hashlib
import hmac
import json

import pytest
from django.core import mail

from notifications.transports import email, webhook
from notifications.transports.base import TransportError

pytestmark = pytest.mark.django_db


def test_email_goes_through_djangos_backend():
    email.send(to="li@example.com", subject="P1 #7 Checkout fails", body="Check in: https://x", message_id="w1")
    [message] = mail.outbox
    assert message.to == ["li@example.com"] and message.subject == "P1 #7 Checkout fails"
    assert message.extra_headers["Message-ID"] == "<w1@warroom>"


def test_the_webhook_posts_signed_json(providers, clock, settings):
    webhook.send(url=settings.NOTIFY_WEBHOOK_URL, payload={"fault": 7, "body": "支付失败"}, delivery_id="fault:7:x")
    [call] = providers.calls("webhook")
    assert json.loads(call.body) == {"fault": 7, "body": "支付失败"}
    assert call.headers["content-type"] == "application/json"
    assert call.headers["x-warroom-delivery"] == "fault:7:x"
    timestamp = call.headers["x-warroom-timestamp"]
    assert timestamp == str(int(clock.now().timestamp()))
    expected = hmac.new(b"hook-secret", timestamp.encode() + b"." + call.body, hashlib.sha256).hexdigest()
    assert call.headers["x-warroom-signature"] == f"sha256={expected}"


def test_a_gone_webhook_is_permanent_and_an_unavailable_one_is_not(providers, settings):
    providers.fail("webhook", "permanent")
    with pytest.raises(TransportError) as gone:
        webhook.send(url=settings.NOTIFY_WEBHOOK_URL, payload={}, delivery_id="d1")
    assert gone.value.permanent
    providers.fail("webhook", "5xx")
    with pytest.raises(TransportError) as unavailable:
        webhook.send(url=settings.NOTIFY_WEBHOOK_URL, payload={}, delivery_id="d1")
    assert not unavailable.value.permanent


def test_a_refused_connection_is_not_ambiguous(settings):
    from warroom.embedded_redis import free_port

    with pytest.raises(TransportError) as caught:
        webhook.send(url=f"http://127.0.0.1:{free_port()}/hooks/x", payload={}, delivery_id="d1")
    assert not caught.value.ambiguous and not caught.value.permanent


def test_the_guard_refuses_requests_that_would_leave_the_machine(outbound_guard):
    import requests

    with pytest.raises(AssertionError, match="unexpected outbound request"):
        requests.get("https://api.dingtalk.com/v1.0/oauth2/accessToken", timeout=1)
    assert outbound_guard == ["https://api.dingtalk.com/v1.0/oauth2/accessToken"]
    outbound_guard.clear()  # seen and expected here; any other test would fail


@pytest.fixture
def silent_mail_server(settings):
    """A mail server that takes the connection and never greets: the client's connect times out."""
    import socket

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)  # the kernel completes the handshake; nobody ever accepts
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", server.getsockname()[1]
    settings.EMAIL_TIMEOUT = 0.3
    yield server
    server.close()


def test_a_mail_server_that_never_answers_the_connection_is_retryable_not_ambiguous(silent_mail_server):
    with pytest.raises(TransportError) as caught:
        email.send(to="li@example.com", subject="P1 #7", body="x", message_id="w1")
    assert not caught.value.ambiguous and not caught.value.permanent


def test_an_email_whose_connection_timed_out_is_retried_not_dropped(silent_mail_server, clock):
    from notifications.outbox.attempts import delivery_attempt
    from notifications.outbox.rows import delivery_create
    from notifications.models import Channel, Delivery

    from .test_outbox import fault_alone

    d = delivery_create(
        fault=fault_alone(), channel=Channel.EMAIL, target="ops@example.com", subject="P1 #1", body="x",
        idempotency_key="email-after-connect-timeout",
    )
    assert d.transport == Channel.EMAIL

    assert delivery_attempt(delivery_id=d.pk) == Delivery.Status.PENDING
    d.refresh_from_db()
    assert not d.unconfirmed and "could not connect" in d.last_error


BROKEN_ANSWERS = {
    "a bad chunk": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nnot-a-chunk-size\r\n",
    "a body that is not the gzip it claims": (
        b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 8\r\nConnection: close\r\n\r\nnot gzip"
    ),
}


@pytest.mark.parametrize("answer", BROKEN_ANSWERS.values(), ids=BROKEN_ANSWERS.keys())
def test_an_answer_that_breaks_after_the_request_was_sent_is_ambiguous(answer):
    """The provider has the request; whatever it did with it, only its answer got lost."""
    import socket
    import threading

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    requests_seen = []

    def serve():
        connection, _ = server.accept()
        requests_seen.append(connection.recv(65536))
        connection.sendall(answer)
        connection.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    with pytest.raises(TransportError) as caught:
        webhook.send(url=f"http://127.0.0.1:{server.getsockname()[1]}/hooks/x", payload={}, delivery_id="d1")
    thread.join()
    server.close()
    assert requests_seen and caught.value.ambiguous and not caught.value.permanent


def test_a_connection_error_names_the_host_and_never_the_query(settings):
    """The URL's query (tokens, signatures, phone numbers) stays out of the outbox and the timeline."""
    from notifications.transports.base import http_request
    from warroom.embedded_redis import free_port

    url = f"http://127.0.0.1:{free_port()}/send?access_token=secret-token&PhoneNumbers=13800000000"
    with pytest.raises(TransportError) as refused:
        http_request("POST", url)
    assert refused.value.message == f"could not connect to {url.split('/')[2]} (connection refused)"
    assert not refused.value.ambiguous

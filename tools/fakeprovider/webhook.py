"""A generic receiver for the product's outgoing webhook (`NOTIFY_WEBHOOK_URL` pointed at
`/hooks/…`); tests check its signature themselves from the recorded request."""

from .base import Answer, Provider


class WebhookReceiver(Provider):
    name = "webhook"

    def api_of(self, path, headers):
        return "webhook" if path.startswith("/hooks/") else None

    def serve(self, record, raw_query):
        mode = self.failures.take("webhook")
        record.injected = mode
        status = {"5xx": 503, "permanent": 410, "throttle": 429}.get(mode, 200)
        record.accepted = status == 200
        return Answer(status, {"ok": status == 200}, hang=mode == "timeout")

    def unavailable(self):
        return Answer(503, {"ok": False})

    def key_fields(self, record):
        return record.json if isinstance(record.json, dict) else {}

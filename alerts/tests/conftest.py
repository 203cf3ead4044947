"""Fixtures of the alerts tests: integrations with their kind's default rules, and a sender
that posts to the real endpoints through Django's test client."""

import itertools
import json

import pytest

from alerts.levels import install_defaults
from alerts.models import Integration
from roster.models import Schedule
from roster.tests import factories as roster_factories

from .support import put_on_call

_n = itertools.count(1)


@pytest.fixture
def make_integration(db):
    """make_integration(kind, business=..., **fields): an integration with its default rules."""

    def make(kind=Integration.Kind.ALERTMANAGER, *, business=None, name=None, **fields):
        integration = Integration.objects.create(
            name=name or f"{Integration.Kind(kind).label} {next(_n)}",
            kind=kind,
            business=business or roster_factories.business(),
            **fields,
        )
        install_defaults(integration)
        return integration

    return make


@pytest.fixture
def send(client):
    """send(integration, payload): POST it as the monitoring system would; the response.

    `payload` is JSON-encoded unless `body` (bytes or str) is given; `kind` overrides the
    URL's last part.
    """

    def post(integration, payload=None, *, body=None, content_type="application/json", kind=None, token=None):
        path = f"/api/v1/integrations/{token or integration.token}/{kind or integration.kind}/"
        if body is None:
            body = json.dumps(payload) if payload is not None else ""
        return client.post(path, data=body, content_type=content_type)

    return post


@pytest.fixture
def fault_handler_on_duty(db):
    """Someone on call on the fault-handler schedule."""
    person = roster_factories.person("Wang Fang")
    put_on_call(Schedule.objects.get(purpose=Schedule.Purpose.FAULT_HANDLER), person)
    return person


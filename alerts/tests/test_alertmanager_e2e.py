"""From a real Prometheus Alertmanager to a page at the provider and back to a recovered fault.

Everything runs for real: Alertmanager (alerts/testing/alertmanager.py) delivers its webhook
to daphne, the web process, at the integration's URL; daphne stores the alert and declares
the fault; a Celery worker (on a redis-server of the test's own, as in the notifications
process tests) creates the collaboration group and pages the business's on-call emergency
contact at the loopback provider (tools/fakeprovider), which checks signatures and tokens.
Then the alert is resolved in Alertmanager, and with the integration's resolve policy
"recover" the fault recovers by itself.

Alertmanager is told to repeat its firing notification every second, so that the
endpoint does see the same alert more than once: it must store one row, counted.

Without an Alertmanager binary the test fails, saying how to install one; it never skips.
"""

import importlib
from datetime import date, timedelta

import pytest
from django.apps import apps
from django.conf import settings as django_settings

from alerts.levels import install_defaults
from alerts.models import Alert, Integration
from alerts.testing.alertmanager import Alertmanager
from incidents.event_types import EventKind
from incidents.models import Fault, Level, TimelineEvent
from notifications.models import Channel, CollaborationGroup, Delivery
from notifications.tests.conftest import fake, providers  # noqa: F401  (fixtures)
from notifications.tests.factories import M, person
from notifications.tests.test_process_faults import PROVIDER_SETTINGS, broker, workers  # noqa: F401  (fixtures)
from roster import selectors as roster_selectors
from roster.models import Business
from roster.tests.factories import rotation, schedule
from warroom.testing.waiting import wait_for
from warroom.tests.browser import Daphne

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

DEADLINE = 120  # seconds: interpreters starting and SQLite writers queueing on a loaded 2-core machine
GROUP_CREATE = "/v1.0/im/sceneGroup/create"
VOICE = "SingleCallByTts"
LABELS = {"alertname": "CheckoutErrors", "severity": "critical", "service": "checkout", "env": "prod"}


def _default_slas() -> None:
    # transactional_db empties every table between tests, the SLA rows of the data migration too.
    importlib.import_module("incidents.migrations.0002_default_sla_policies").create_defaults(apps, None)


@pytest.fixture
def web(tmp_path, broker, providers, settings, monkeypatch, transactional_db):  # noqa: F811
    """daphne on the test database, publishing tasks to the workers' broker, with the provider
    settings the workers have (the web process writes the first pages and decides who is
    reachable by them). Not started: the test starts it, so that its port is known first."""
    for name in PROVIDER_SETTINGS:
        monkeypatch.setenv(name, str(getattr(django_settings, name)))
    # warroom.tests.browser._env hands the web process settings.REDIS_URL.
    settings.REDIS_URL = broker.url
    daphne = Daphne(tmp_path / "web")
    yield daphne
    daphne.stop()
    if daphne.log_path.exists():  # shown by pytest only when the test fails
        print(f"--- daphne log: {daphne.log_path} ---\n{daphne.log_path.read_text(errors='replace')[-4000:]}")


def test_an_alertmanager_alert_pages_the_on_call_contact_and_its_resolution_recovers_the_fault(
    web, workers, providers, tmp_path  # noqa: F811
):
    _default_slas()
    contact = person("Wang Fang", methods=(M.ALIYUN_VOICE, M.ALIYUN_SMS))
    on_call = schedule("Checkout emergency contacts")
    rotation(on_call, [contact], start_date=date.today() - timedelta(days=7))
    business = Business.objects.create(name="Checkout", slug="checkout", emergency_schedule=on_call)
    assert roster_selectors.emergency_contacts(business=business) == [contact]
    integration = Integration.objects.create(
        name="Prometheus prod", kind=Integration.Kind.ALERTMANAGER, business=business,
        resolve_policy=Integration.ResolvePolicy.RECOVER,
    )
    install_defaults(integration)

    alertmanager = Alertmanager(
        f"{web.url}{integration.path}", tmp_path / "alertmanager",
        group_wait="0s", group_interval="200ms", repeat_interval="1s",
    )
    # First: without the binary this fails here, with the install message, before anything else starts.
    alertmanager.start()
    try:
        web.start()
        workers("w1")
        alertmanager.post_alerts([{
            "labels": LABELS,
            "annotations": {"summary": "Checkout answers 5xx", "description": "12 % of checkouts fail"},
            "generatorURL": "http://prometheus.example/graph?g0.expr=checkout_errors",
        }])

        # Alertmanager → daphne: the alert is stored and declares a P2 (the default rule for critical).
        fault = wait_for(lambda: Fault.objects.filter(affected_business=business).first(), DEADLINE,
                         f"a fault for {business.name} (Alertmanager log: {alertmanager.log_path})")
        assert fault.level == Level.P2 and fault.title == "Checkout answers 5xx"
        alert = Alert.objects.get(integration=integration)
        assert (alert.status, alert.fault_id, alert.rule_name) == ("firing", fault.pk, "critical → P2")

        # The worker → the provider: the group exists and the on-call contact's page was accepted.
        def group_created():
            group = CollaborationGroup.objects.filter(fault=fault).exclude(open_conversation_id="").first()
            return group is not None and [r.json["uuid"] for r in providers.accepted(GROUP_CREATE)] == [group.uuid]

        wait_for(group_created, DEADLINE, "the collaboration group to be created at the provider")

        def contact_paged():
            pages = set(Delivery.objects.filter(
                fault=fault, person=contact, purpose=Delivery.Purpose.PAGE, channel=Channel.ALIYUN_VOICE,
            ).values_list("provider_key", flat=True))
            return [r for r in providers.accepted(VOICE) if r.query.get("OutId") in pages]

        call = wait_for(contact_paged, DEADLINE, f"a page to {contact.name} accepted at the provider")[0]
        assert call.query["CalledNumber"] in contact.phone

        # Alertmanager repeats the firing notification (repeat_interval 1s): counted, not stored again.
        wait_for(lambda: Alert.objects.get(pk=alert.pk).received_count >= 2, DEADLINE,
                 "Alertmanager to send the firing alert again")

        alertmanager.resolve(LABELS)

        def recovered():
            fault.refresh_from_db()
            return fault.status == Fault.Status.RECOVERED

        wait_for(recovered, DEADLINE, "the resolved alert to recover the fault")
        alert.refresh_from_db()
        assert alert.status == "resolved" and alert.ends_at is not None and alert.received_count >= 3
        assert Alert.objects.count() == 1, list(Alert.objects.values("status", "fingerprint", "received_count"))
        assert TimelineEvent.objects.filter(fault=fault, kind=EventKind.FAULT_RECOVERED).count() == 1
        assert not TimelineEvent.objects.filter(fault=fault, kind=EventKind.MONITORING_CLEARED).exists()
        assert Fault.objects.filter(affected_business=business).count() == 1
    finally:
        alertmanager.stop()
        print(f"--- alertmanager log ---\n{alertmanager.log_tail(40)}")

"""Setting up integrations (admin and `create_integration`) and the war room's alerts panel."""

import json
import shlex
from io import StringIO
from urllib.parse import urlencode

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from alerts import sources
from alerts.instructions import alertmanager_yaml, sample_curl, webhook_url
from alerts.models import Alert, Integration, LevelRule
from incidents.models import Level
from incidents.tests.factories import Cast, business

pytestmark = pytest.mark.django_db

Kind = Integration.Kind


@pytest.fixture
def admin_client_():
    user = get_user_model().objects.create_superuser("root", "root@example.com", None)
    c = Client()
    c.force_login(user)
    return c


def client_for(user) -> Client:
    c = Client()
    c.force_login(user)
    return c


def integration_form(biz, **overrides) -> dict:
    data = {
        "name": "Checkout Alertmanager",
        "kind": "alertmanager",
        "business": biz.pk,
        "enabled": "on",
        "group_by": '["alertname", "cluster"]',
        "resolve_policy": "ask",
        "rate_limit": "600",
        "heartbeat_interval": "",
        "heartbeat_grace": "",
        "heartbeat_level": "2",
        "rules-TOTAL_FORMS": "0",
        "rules-INITIAL_FORMS": "0",
        "rules-MIN_NUM_FORMS": "0",
        "rules-MAX_NUM_FORMS": "1000",
        "_save": "Save",
    }
    data.update(overrides)
    return data


def alert_for(integration: Integration, fault=None, **fields) -> Alert:
    now = timezone.now()
    values = {
        "integration": integration, "business": integration.business, "fault": fault,
        "fingerprint": f"fp-{Alert.objects.count() + 1}", "status": "firing", "title": "HighErrorRate",
        "severity": "critical", "labels": {"alertname": "HighErrorRate", "severity": "critical"},
        "level": Level.P2, "rule_name": "critical → P2", "starts_at": now, "received_at": now,
        "last_received_at": now, "raw": {"alert": {"labels": {"alertname": "HighErrorRate"}}},
    }
    values.update(fields)
    return Alert.objects.create(**values)


# --- the admin ------------------------------------------------------------------------------


def test_adding_an_integration_in_the_admin_installs_the_default_rules_and_shows_its_url(admin_client_):
    biz = business("Checkout")
    response = admin_client_.post("/admin/alerts/integration/add/", integration_form(biz))
    assert response.status_code == 302, response.content.decode()[:3000]

    integration = Integration.objects.get(business=biz)
    assert integration.group_by == ["alertname", "cluster"]
    rules = list(integration.rules.order_by("position"))
    assert [(r.severity.split(",")[0], r.level) for r in rules] == [
        ("critical", Level.P2), ("error", Level.P3), ("warning", None)
    ]

    page = admin_client_.get(f"/admin/alerts/integration/{integration.pk}/change/").content.decode()
    url = settings.SITE_URL + integration.path
    assert url in page
    assert "curl -sS -X POST" in page and "webhook_configs" in page and "navigator.clipboard" in page
    assert "critical → P2" in page  # the rules inline


def test_rules_given_in_the_form_are_kept_instead_of_the_defaults(admin_client_):
    biz = business()
    data = integration_form(biz, **{
        "rules-TOTAL_FORMS": "1", "rules-0-position": "1", "rules-0-name": "prod only", "rules-0-severity": "",
        "rules-0-labels": '{"env": "prod"}', "rules-0-metric": "", "rules-0-value_above": "", "rules-0-level": "1",
    })
    assert admin_client_.post("/admin/alerts/integration/add/", data).status_code == 302
    integration = Integration.objects.get(business=biz)
    assert [(r.name, r.labels, r.level) for r in integration.rules.all()] == [("prod only", {"env": "prod"}, 1)]


@pytest.mark.parametrize("group_by", ['{"alertname": 1}', "alertname", "[1, 2]", '[""]'])
def test_a_bad_group_by_is_a_form_error(admin_client_, group_by):
    biz = business()
    response = admin_client_.post("/admin/alerts/integration/add/", integration_form(biz, group_by=group_by))
    assert response.status_code == 200
    assert "JSON list of label names" in response.content.decode()
    assert not Integration.objects.exists()


def test_an_empty_group_by_is_an_empty_list(admin_client_):
    biz = business()
    assert admin_client_.post("/admin/alerts/integration/add/", integration_form(biz, group_by="")).status_code == 302
    assert Integration.objects.get().group_by == []


def test_rule_labels_must_be_an_object_of_strings(admin_client_):
    biz = business()
    data = integration_form(biz, **{
        "rules-TOTAL_FORMS": "1", "rules-0-position": "1", "rules-0-name": "bad", "rules-0-labels": '["env"]',
        "rules-0-level": "2",
    })
    response = admin_client_.post("/admin/alerts/integration/add/", data)
    assert response.status_code == 200
    assert "JSON object whose values are strings" in response.content.decode()
    assert not Integration.objects.exists()


def test_a_heartbeat_needs_its_interval(admin_client_):
    biz = business()
    data = integration_form(biz, kind="heartbeat", name="Prometheus watchdog")
    response = admin_client_.post("/admin/alerts/integration/add/", data)
    assert response.status_code == 200 and "needs its interval" in response.content.decode()

    response = admin_client_.post("/admin/alerts/integration/add/", {**data, "heartbeat_interval": "300"})
    assert response.status_code == 302
    integration = Integration.objects.get()
    assert integration.heartbeat_interval.total_seconds() == 300 and not integration.rules.exists()
    page = admin_client_.get(f"/admin/alerts/integration/{integration.pk}/change/").content.decode()
    assert webhook_url(integration) in page and "Heartbeat (dead man" in page


def test_the_integration_list_answers_with_its_filters(admin_client_):
    Integration.objects.create(name="AM", kind=Kind.ALERTMANAGER, business=business())
    for query in ["", "?kind__exact=alertmanager", "?enabled__exact=1", "?q=AM"]:
        assert admin_client_.get(f"/admin/alerts/integration/{query}").status_code == 200


def test_the_alert_list_and_an_alert_answer_read_only(admin_client_):
    biz = business()
    integration = Integration.objects.create(name="AM", kind=Kind.ALERTMANAGER, business=biz)
    alert = alert_for(integration)
    below = alert_for(integration, level=None, rule_name="", title="DiskAlmostFull")
    now = timezone.localtime()
    queries = [
        "", "?status__exact=firing", "?level=2", "?level=below", f"?integration__id__exact={integration.pk}",
        f"?business__id__exact={biz.pk}", f"?received_at__year={now.year}&received_at__month={now.month}",
        "?q=HighError", f"?q={alert.fingerprint}",
    ]
    for query in queries:
        response = admin_client_.get(f"/admin/alerts/alert/{query}")
        assert response.status_code == 200, query
    listed = admin_client_.get("/admin/alerts/alert/?level=below").content.decode()
    assert "DiskAlmostFull" in listed and "HighErrorRate" not in listed and "below fault level" in listed

    page = admin_client_.get(f"/admin/alerts/alert/{below.pk}/change/")
    assert page.status_code == 200
    body = page.content.decode()
    assert "&quot;alertname&quot;: &quot;HighErrorRate&quot;" in body  # the raw payload, indented
    assert 'name="_save"' not in body
    assert admin_client_.get("/admin/alerts/alert/add/").status_code == 403


# --- what to paste into monitoring ---------------------------------------------------------


@pytest.mark.parametrize("kind", [Kind.ALERTMANAGER, Kind.GRAFANA, Kind.CLOUDMONITOR, Kind.GENERIC])
def test_each_sample_curl_sends_one_firing_critical_alert_the_parsers_accept(kind):
    integration = Integration.objects.create(name="x", kind=kind, business=business())
    words = shlex.split(sample_curl(integration).replace("\\\n", " "))
    assert webhook_url(integration) in words
    data = [words[i + 1] for i, w in enumerate(words) if w == "-d"]
    if kind == Kind.CLOUDMONITOR:
        body = urlencode([tuple(d.split("=", 1)) for d in data]).encode()
        content_type = "application/x-www-form-urlencoded"
    else:
        (body,), content_type = [d.encode() for d in data], "application/json"
        json.loads(body)
    (incoming,) = sources.parse(kind, body, content_type)
    assert incoming.status == "firing" and incoming.severity.lower() == "critical"


def test_the_alertmanager_receiver_points_at_the_integration():
    biz = business("Payments")
    integration = Integration.objects.create(name="AM", kind=Kind.ALERTMANAGER, business=biz)
    snippet = alertmanager_yaml(integration)
    assert f"name: warroom-{biz.slug}" in snippet and f"url: '{webhook_url(integration)}'" in snippet
    assert "send_resolved: true" in snippet
    assert alertmanager_yaml(Integration(kind=Kind.GENERIC, business=biz)) == ""


# --- create_integration ----------------------------------------------------------------------


def test_the_command_creates_an_integration_with_its_rules_and_prints_its_url():
    biz = business("Payments")
    out = StringIO()
    call_command("create_integration", "--kind", "alertmanager", "--business", biz.slug, stdout=out)
    integration = Integration.objects.get(business=biz)
    printed = out.getvalue()
    assert integration.name == "Payments Prometheus Alertmanager"
    assert settings.SITE_URL + integration.path in printed
    assert "webhook_configs:" in printed and "send_resolved: true" in printed and "curl -sS" in printed
    assert LevelRule.objects.filter(integration=integration).count() == 3


def test_the_command_makes_a_heartbeat_with_its_level_and_interval():
    biz = business()
    out = StringIO()
    call_command("create_integration", kind="heartbeat", business=biz.slug, name="Watchdog",
                 level_for_heartbeat="P1", interval=120, stdout=out)
    integration = Integration.objects.get(name="Watchdog")
    assert integration.kind == Kind.HEARTBEAT and integration.heartbeat_level == Level.P1
    assert integration.heartbeat_interval.total_seconds() == 120
    assert webhook_url(integration) in out.getvalue() and "webhook_configs" not in out.getvalue()


def test_the_command_names_the_valid_businesses_and_kinds():
    biz = business()
    with pytest.raises(CommandError, match=f"No business has the slug 'nope'. Valid slugs: .*{biz.slug}"):
        call_command("create_integration", kind="alertmanager", business="nope", stdout=StringIO())
    with pytest.raises(CommandError, match="Unknown kind 'nagios'. Valid kinds: alertmanager, grafana"):
        call_command("create_integration", kind="nagios", business=biz.slug, stdout=StringIO())
    with pytest.raises(CommandError, match="heartbeat only"):
        call_command("create_integration", kind="generic", business=biz.slug, interval=60, stdout=StringIO())
    with pytest.raises(CommandError, match="Unknown level 'P9'"):
        call_command("create_integration", kind="heartbeat", business=biz.slug, level_for_heartbeat="P9",
                     stdout=StringIO())
    assert not Integration.objects.exists()


# --- the war room's alerts panel -------------------------------------------------------------


def test_the_war_room_shows_the_alerts_of_the_fault():
    cast = Cast()
    integration = Integration.objects.create(name="Prometheus prod", kind=Kind.ALERTMANAGER,
                                             business=cast.fault.affected_business)
    alert_for(integration, cast.fault, title="CheckoutErrorRate", received_count=3)
    alert_for(integration, cast.fault, title="DiskAlmostFull", level=None, rule_name="", status="resolved",
              ends_at=timezone.now())
    alert_for(integration, None, title="SomebodyElses")

    for path in [f"/faults/{cast.fault.pk}/", f"/faults/{cast.fault.pk}/panels/"]:
        response = client_for(cast.stakeholder).get(path)
        assert response.status_code == 200
        page = response.content.decode()
        assert 'data-region="alerts"' in page
        assert "CheckoutErrorRate" in page and "DiskAlmostFull" in page and "SomebodyElses" not in page
        assert "Prometheus prod" in page and "received 3 times" in page and "below fault level" in page
        assert page.index("DiskAlmostFull") < page.index("CheckoutErrorRate")  # newest first


def test_a_fault_declared_by_hand_renders_without_an_alerts_panel():
    cast = Cast()
    response = client_for(cast.stakeholder).get(f"/faults/{cast.fault.pk}/")
    assert response.status_code == 200
    assert 'data-region="alerts"' not in response.content.decode()


def test_the_panel_in_chinese():
    cast = Cast()
    integration = Integration.objects.create(name="AM", kind=Kind.ALERTMANAGER, business=cast.fault.affected_business)
    alert_for(integration, cast.fault, level=None, rule_name="")
    c = client_for(cast.stakeholder)
    c.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hans"
    page = c.get(f"/faults/{cast.fault.pk}/").content.decode()
    assert "告警" in page and "低于故障等级" in page

"""The war room in a real browser (Debian's chromium via Playwright) against a real daphne.

Screenshots land in test-artifacts/ for a person to look at.
"""

import importlib
import os
import re

import pytest

from incidents import services
from incidents.models import Task
from incidents.tests.factories import Cast
from notifications.models import Delivery
from notifications.outbox.attempts import delivery_attempt

from .browser import ARTIFACTS, CHROMIUM_ARGS, Daphne, chromium_missing_message, chromium_path, in_thread

try:
    from playwright.sync_api import expect, sync_playwright
except ImportError:  # pragma: no cover - a missing requirement must fail loudly, not skip
    sync_playwright = expect = None

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PASSWORD = "a long demo password"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}


# --- fixtures -----------------------------------------------------------------------------


def _default_slas() -> None:
    # transactional_db empties every table between tests, the SLA rows of the data migration too.
    from django.apps import apps

    migration = importlib.import_module("incidents.migrations.0002_default_sla_policies")
    migration.create_defaults(apps, None)


@pytest.fixture
def room(transactional_db):
    def make():
        _default_slas()
        cast = Cast()
        for u in (cast.commander_user, cast.handler_user, cast.stakeholder):
            u.set_password(PASSWORD)
            u.save()
        return cast

    return in_thread(make)


@pytest.fixture
def server(transactional_db, tmp_path):
    daphne = Daphne(tmp_path).start()
    yield daphne
    daphne.stop()


@pytest.fixture
def browser(server):
    if sync_playwright is None:
        pytest.fail("The playwright package is missing: pip install -r requirements.txt", pytrace=False)
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        path = chromium_path(bundled=p.chromium.executable_path)
        if not os.path.exists(path):
            pytest.fail(chromium_missing_message(path), pytrace=False)
        launched = p.chromium.launch(executable_path=path, headless=True, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


class Pages:
    """Open the war room as someone, in a browser context of his own, and collect script errors."""

    def __init__(self, browser, server):
        self.browser, self.server, self.errors = browser, server, []

    def open(self, username: str, fault_id: int, viewport=DESKTOP, locale="en-US"):
        context = self.browser.new_context(viewport=viewport, locale=locale)
        page = context.new_page()
        page.on("pageerror", lambda exc: self.errors.append(f"{username}: {exc}"))
        page.goto(f"{self.server.url}/login/?next=/faults/{fault_id}/")
        page.locator("#id_username").fill(username)
        page.locator("#id_password").fill(PASSWORD)
        page.locator("form[action='/login/'] button[type=submit]").click()
        expect(page.locator("#connection")).to_have_attribute("data-state", "live")
        # Marks this document: if the page reloaded, the mark would be gone.
        page.evaluate("window.__sameDocument = true")
        return page


@pytest.fixture
def pages(browser, server):
    opened = Pages(browser, server)
    yield opened
    assert opened.errors == [], "script errors in the page"


def shot(page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def add_task(cast: Cast, title: str) -> None:
    services.task_create(
        fault=cast.fault, assignee=cast.handler, kind=Task.Kind.RECOVER, title=title, actor=cast.commander_user
    )


# --- the cases ----------------------------------------------------------------------------


def test_a_stakeholders_page_shows_the_commanders_new_task_without_a_reload(pages, room):
    watcher = pages.open("stakeholder", room.fault.pk)
    commander = pages.open("commander", room.fault.pk)

    commander.get_by_text("Assign a task", exact=True).click()
    commander.locator("#id_task-assignee").select_option(label="Li Lei")
    commander.locator("#id_task-kind").select_option(value="recover")
    commander.locator("#id_task-title").fill("Restart the card gateway")
    commander.get_by_role("button", name="Assign task").click()
    expect(commander.locator(".flash")).to_contain_text("Task assigned.")

    expect(watcher.locator("[data-timeline]")).to_contain_text("Zhang Wei gave Li Lei a task: Restart the card gateway")
    expect(watcher.locator("#tasks")).to_contain_text("Restart the card gateway")
    expect(watcher.locator("#tasks")).to_contain_text("Li Lei")
    expect(watcher.locator("#tasks .countdown")).to_have_text(re.compile(r"^in 0:(29|30):\d\d$"))
    assert watcher.evaluate("window.__sameDocument") is True
    shot(watcher, "live-update-stakeholder")
    shot(commander, "live-update-commander")


def test_a_page_cut_off_by_a_server_restart_shows_what_it_missed_after_reconnecting(pages, room, server):
    watcher = pages.open("stakeholder", room.fault.pk)
    expect(watcher.locator("[data-timeline] li")).to_have_count(2)

    server.stop()
    expect(watcher.locator("#connection")).to_have_attribute("data-state", re.compile("offline|connecting"))
    shot(watcher, "restart-offline")
    # Changes while the web process is down: their broadcasts reach no page.
    in_thread(add_task, room, "Rebuild the payment cache")
    in_thread(services.status_update_post, fault=room.fault, body="Cache rebuild at 40%", actor=room.commander_user)
    server.start()

    expect(watcher.locator("[data-timeline]")).to_contain_text(
        "Zhang Wei gave Li Lei a task: Rebuild the payment cache", timeout=30_000
    )
    expect(watcher.locator("[data-timeline]")).to_contain_text("Zhang Wei posted a progress update: Cache rebuild at 40%")
    expect(watcher.locator("[data-timeline] li")).to_have_count(4)
    expect(watcher.locator("#connection")).to_have_attribute("data-state", "live")
    expect(watcher.locator("#tasks")).to_contain_text("Rebuild the payment cache")
    expect(watcher.locator("#updates")).to_contain_text("Cache rebuild at 40%")
    assert watcher.evaluate("window.__sameDocument") is True
    shot(watcher, "restart-caught-up")


def test_a_stakeholder_sees_no_controls_and_a_forged_post_is_refused(pages, room):
    watcher = pages.open("stakeholder", room.fault.pk, viewport=PHONE)
    expect(watcher.locator("#roles")).to_contain_text("Li Lei")
    expect(watcher.locator("form[action*='/act/']")).to_have_count(0)
    expect(watcher.locator("main button")).to_have_count(0)
    expect(watcher.get_by_role("heading", name="Controls")).to_have_count(0)
    shot(watcher, "stakeholder-phone-en")

    token = next(c["value"] for c in watcher.context.cookies() if c["name"] == "csrftoken")
    response = watcher.request.post(
        f"{pages.server.url}/faults/{room.fault.pk}/act/status/",
        form={"status-to": "mitigated"},
        headers={"X-CSRFToken": token, "Referer": pages.server.url + "/"},
    )
    assert response.status == 403

    handler = pages.open("handler", room.fault.pk, viewport=PHONE)
    expect(handler.get_by_role("button", name="Check in", exact=True)).to_be_visible()
    expect(handler.locator("form[action$='/act/status/']")).to_have_count(0)


def _busy_room(cast: Cast) -> None:
    """A fault in the middle of its response, for the screenshots."""
    services.role_check_in(fault=cast.fault, person=cast.commander, actor=cast.commander_user, via="web")
    add_task(cast, "Roll back release 2026.11.3")
    services.task_create(
        fault=cast.fault,
        assignee=cast.handler,
        kind=Task.Kind.INVESTIGATE,
        title="Find why the card gateway times out",
        actor=cast.commander_user,
    )
    services.plan_propose(fault=cast.fault, description="Fail over payments to the standby region", expected_impact=3, actor=cast.handler_user)
    services.plan_propose(fault=cast.fault, description="Stop all card payments for ten minutes", expected_impact=1, actor=cast.handler_user)
    services.status_update_post(
        fault=cast.fault, body="Rollback started; error rate falling from 30% to 12%.", actor=cast.commander_user
    )
    services.status_update_post(fault=cast.fault, kind="note", body="Gateway logs show TLS handshake timeouts.", actor=cast.handler_user)
    # The declaration paged him; a worker sends it.
    page = Delivery.objects.get(fault=cast.fault, person=cast.handler, purpose=Delivery.Purpose.PAGE)
    delivery_attempt(delivery_id=page.pk)


@pytest.mark.parametrize("viewport_name", ["phone", "desktop"])
def test_the_war_room_reads_well_on_a_phone_and_a_desktop_in_both_languages(pages, room, viewport_name):
    in_thread(_busy_room, room)
    viewport = PHONE if viewport_name == "phone" else DESKTOP
    page = pages.open("commander", room.fault.pk, viewport=viewport)
    expect(page.get_by_role("heading", name="Roles and check-in")).to_be_visible()
    expect(page.locator("#plans")).to_contain_text("More severe than the fault (P2)")
    expect(page.locator("#deliveries")).to_contain_text("Li Lei")
    expect(page.locator("#roles")).to_contain_text("Paged by")
    shot(page, f"room-commander-{viewport_name}-en")

    page.locator("#language-select").select_option(value="zh-hans")
    page.locator("form.lang button").click()
    expect(page.get_by_role("heading", name="角色与签到")).to_be_visible()
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    expect(page.locator("#connection")).to_contain_text("实时")
    expect(page.locator("[data-timeline]")).to_contain_text("发布了进展")
    expect(page.locator("[data-elapsed-from]").first).to_have_text(re.compile(r"^\d+:\d\d:\d\d$"))
    shot(page, f"room-commander-{viewport_name}-zh-hans")

    page.goto(f"{pages.server.url}/faults/")
    expect(page.get_by_role("heading", name="故障")).to_be_visible()
    shot(page, f"faults-{viewport_name}-zh-hans")
    watcher = pages.open("stakeholder", room.fault.pk, viewport=viewport, locale="zh-CN")
    expect(watcher.get_by_role("heading", name="时间线")).to_be_visible()
    shot(watcher, f"room-stakeholder-{viewport_name}-zh-hans")

"""The response around the notifications, in a real browser: the conference link and the
recovery summary arriving live, and a P1 in the sandbox with its check-in card.

Workers and the scheduler are played by calling what they call, off the browser's thread.
Screenshots land in test-artifacts/.
"""

import re

import pytest

from incidents import services
from incidents.models import Task
from incidents.tests.factories import business, user
from notifications.outbox.attempts import delivery_attempt
from notifications.response.scheduler import follow_ups_run
from notifications.models import Channel, Delivery
from notifications.tests import factories as people
from django.utils import timezone

from .browser import in_thread
from .test_browser import DESKTOP, PASSWORD, PHONE, _default_slas, browser, pages, server, shot  # noqa: F401

try:
    from playwright.sync_api import expect
except ImportError:  # pragma: no cover - test_browser fails loudly about it
    expect = None

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


class P1:
    """A P1 in the sandbox: Zhang Wei commands, Han Meimei handles; both have DingTalk ids."""

    def __init__(self):
        _default_slas()
        self.commander_user = user("commander", "incidents.view_fault")
        self.handler_user = user("handler", "incidents.view_fault")
        self.stakeholder = user("stakeholder", "incidents.view_fault")
        for u in (self.commander_user, self.handler_user, self.stakeholder):
            u.set_password(PASSWORD)
            u.save()
        self.commander = people.person("Zhang Wei", user=self.commander_user)
        self.handler = people.person("Han Meimei", user=self.handler_user)
        self.fault = services.fault_declare(
            title="Checkout fails",
            level=1,
            impact="30% of card payments fail at checkout",
            affected_business=business("Payments"),
            commander=self.commander,
            fault_handler=self.handler,
            actor=None,
        )


def work(*channels):
    """The workers: send every due row, until nothing more is due."""
    for _ in range(20):
        due = Delivery.objects.filter(status=Delivery.Status.PENDING, next_attempt_at__lte=timezone.now())
        if channels:
            due = due.filter(channel__in=channels)
        if not any([delivery_attempt(delivery_id=pk) for pk in list(due.values_list("pk", flat=True))]):
            return


def paged(room: P1) -> None:
    """The group and its card go out, the scheduler pulls both in, the sandbox "calls" them."""
    work()
    follow_ups_run()
    work()


@pytest.fixture
def p1(transactional_db):
    return in_thread(P1)


def test_the_stakeholder_sees_the_conference_link_arrive_when_the_commander_starts_it(pages, p1):
    in_thread(services.role_check_in, fault=p1.fault, person=p1.commander, actor=None)
    watcher = pages.open("stakeholder", p1.fault.pk)
    expect(watcher.locator("#conference")).to_contain_text("not started")
    expect(watcher.get_by_role("button", name="Start conference call")).to_have_count(0)

    commander = pages.open("commander", p1.fault.pk)
    commander.get_by_role("button", name="Start conference call").click()
    expect(commander.locator(".flash")).to_contain_text("Starting the conference call…")
    expect(commander.locator("#conference")).to_contain_text("Starting…")
    expect(watcher.locator("#conference")).to_contain_text("Starting…")
    expect(watcher.locator("[data-timeline]")).to_contain_text("Zhang Wei asked for a video conference")

    in_thread(work, "dingtalk_conference")  # the worker starts it (in the sandbox)
    join = watcher.get_by_role("link", name="Join the conference")
    expect(join).to_be_visible()
    expect(join).to_have_attribute("href", re.compile(r"^#sandbox-conference-\d+$"))
    expect(watcher.locator("#conference")).not_to_contain_text("Starting…")
    expect(watcher.locator("[data-timeline]")).to_contain_text("The video conference has started with Zhang Wei")
    expect(commander.get_by_role("link", name="Join the conference")).to_be_visible()
    assert watcher.evaluate("window.__sameDocument") is True
    shot(watcher, "conference-live-stakeholder")


def test_the_recovery_summary_appears_live_when_the_commander_marks_the_fault_recovered(pages, p1):
    in_thread(paged, p1)
    in_thread(services.role_check_in, fault=p1.fault, person=p1.commander, actor=None)
    watcher = pages.open("stakeholder", p1.fault.pk)
    expect(watcher.locator("#summary")).to_have_count(0)

    commander = pages.open("commander", p1.fault.pk)
    commander.get_by_role("button", name="Mark recovered").click()
    expect(commander.locator(".flash")).to_contain_text("Status changed.")

    summary = watcher.locator("#summary")
    expect(summary).to_be_visible()
    expect(summary.get_by_role("heading", name="Recovery metrics")).to_be_visible()
    expect(summary.locator(".stage")).to_have_count(6)
    expect(summary).to_contain_text("Zhang Wei checked in (commander)")
    expect(summary.locator(".verdict-met").first).to_be_visible()
    # In the page's order: right after the section links, before the roles.
    order = watcher.evaluate("Array.from(document.querySelectorAll('[data-region]')).map(e => e.dataset.region)")
    assert order.index("summary") == order.index("jump") + 1
    assert watcher.evaluate("window.__sameDocument") is True
    shot(watcher, "summary-live-stakeholder")


def test_the_handler_checks_in_from_the_sandbox_card_and_the_dialling_stops(pages, p1):
    # Both were paged at the declaration: their calls stay queued while the group and card go.
    in_thread(work, Channel.DINGTALK_GROUP_CREATE, Channel.DINGTALK_CARD)
    in_thread(follow_ups_run)
    handler = pages.open("handler", p1.fault.pk, viewport=PHONE)
    card = handler.locator(".dt-card")
    expect(card).to_contain_text("Check-in card in the group")
    expect(handler.locator("#roles")).to_contain_text("Dialling since")

    card.get_by_role("button", name="Check in from the card").click()
    expect(handler.locator(".flash")).to_contain_text("Checked in from the card.")
    row = handler.locator("#roles li", has_text="Han Meimei")
    expect(row).to_contain_text("Checked in")
    expect(row).to_contain_text("Dialling stopped, 1 pending page cancelled")
    expect(handler.locator("[data-timeline]")).to_contain_text("1 pending page to Han Meimei cancelled")
    expect(card.get_by_role("button")).to_have_count(0)
    shot(handler, "sandbox-card-checked-in-phone-en")


def _busy_p1(room: P1) -> None:
    paged(room)
    services.role_check_in(fault=room.fault, person=room.commander, actor=room.commander_user, via="web")
    services.task_create(
        fault=room.fault, assignee=room.handler, kind=Task.Kind.RECOVER, title="Roll back release 2026.11.3",
        actor=room.commander_user,
    )
    services.status_update_post(
        fault=room.fault, body="Rollback started; error rate falling from 30% to 12%.", actor=room.commander_user
    )
    services.conference_request(fault=room.fault, actor=room.commander_user)
    work()


@pytest.mark.parametrize("viewport_name", ["phone", "desktop"])
def test_a_p1_in_the_sandbox_reads_well_in_both_languages(pages, p1, viewport_name):
    in_thread(_busy_p1, p1)
    viewport = PHONE if viewport_name == "phone" else DESKTOP
    page = pages.open("handler", p1.fault.pk, viewport=viewport)
    expect(page.locator("#sandbox")).to_contain_text("DING call to Han Meimei")
    expect(page.locator("#group-state")).to_contain_text(f"P1 #{p1.fault.pk} Checkout fails")
    expect(page.get_by_role("link", name="Join the conference")).to_be_visible()
    shot(page, f"sandbox-room-handler-{viewport_name}-en")

    page.locator("#language-select").select_option(value="zh-hans")
    page.locator("form.lang button").click()
    expect(page.get_by_role("heading", name="沙箱", exact=True)).to_be_visible()
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    expect(page.locator("[data-timeline]")).to_contain_text("已创建协作群")
    shot(page, f"sandbox-room-handler-{viewport_name}-zh-hans")

    page.locator(".dt-card").get_by_role("button", name="在卡片上签到").click()
    expect(page.locator("#roles li", has_text="Han Meimei")).to_contain_text("已停止呼叫")
    shot(page, f"sandbox-room-checked-in-{viewport_name}-zh-hans")

    in_thread(services.fault_mark_recovered, fault=p1.fault, actor=p1.commander_user)
    expect(page.locator("#summary")).to_contain_text("恢复指标")
    shot(page, f"summary-{viewport_name}-zh-hans")

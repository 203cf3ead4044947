"""The war room around the notifications: the group and the conference in the header, the
sandbox with its check-in card, dialling on the roles board, and the recovery summary.

Workers and the scheduler are played by calling what they call (`delivery_attempt`,
`follow_ups_run`), with the after-commit hooks run as a real commit would run them.
"""

import pytest
from django.test import Client

from incidents import services
from incidents.event_types import EventKind
from incidents.models import Fault, RoleAssignment, Task, TimelineEvent
from incidents.tests.factories import business, user
from notifications.outbox.attempts import delivery_attempt
from notifications.response.scheduler import follow_ups_run
from notifications.models import Channel, Delivery, Engagement, SandboxMessage
from notifications.tests import factories as people
from django.utils import timezone

pytestmark = pytest.mark.django_db

Status = Delivery.Status


def client_for(u) -> Client:
    c = Client()
    c.force_login(u)
    return c


def section(html: str, region: str) -> str:
    start = html.index(f'data-region="{region}"')
    end = html.find("data-region=", start + 20)
    return html[start : end if end != -1 else len(html)]


class Room:
    """A P1 in the sandbox: Zhang Wei commands, Han Meimei handles, both reachable on DingTalk."""

    def __init__(self, commit):
        self.commit = commit
        self.commander_user = user("commander", "incidents.view_fault")
        self.handler_user = user("handler", "incidents.view_fault")
        self.stakeholder = user("stakeholder", "incidents.view_fault")
        self.commander = people.person("Zhang Wei", user=self.commander_user)
        self.handler = people.person("Han Meimei", user=self.handler_user)
        self.fault = commit(
            services.fault_declare,
            title="Checkout fails",
            level=1,
            impact="30% of payments fail",
            affected_business=business("Payments"),
            commander=self.commander,
            fault_handler=self.handler,
            actor=None,
        )

    def work(self, *channels):
        """The workers: send every due row (of these channels), until nothing more is due."""
        for _ in range(20):
            due = Delivery.objects.filter(status=Status.PENDING, next_attempt_at__lte=timezone.now())
            if channels:
                due = due.filter(channel__in=channels)
            results = [self.commit(delivery_attempt, delivery_id=pk) for pk in due.values_list("pk", flat=True)]
            if not any(results):
                return

    def tick(self):
        """The scheduler: give contacts their role and follow up (first pages go out with the declaration)."""
        self.commit(follow_ups_run)

    def page(self, u) -> str:
        response = client_for(u).get(f"/faults/{self.fault.pk}/")
        assert response.status_code == 200
        return response.content.decode()

    def act(self, u, action, **data):
        return self.commit(client_for(u).post, f"/faults/{self.fault.pk}/act/{action}/", data)


@pytest.fixture
def room(django_capture_on_commit_callbacks):
    def commit(fn, *args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return fn(*args, **kwargs)

    return Room(commit)


# --- the conference -----------------------------------------------------------------------


def test_the_commander_starts_the_conference_and_the_page_says_starting_until_the_link_arrives(room):
    services.role_check_in(fault=room.fault, person=room.commander, actor=None)
    html = room.page(room.commander_user)
    assert "Start conference call" in html and "/act/conference/" in html

    response = room.act(room.commander_user, "conference")
    assert response.status_code == 302 and response["Location"] == f"/faults/{room.fault.pk}/#top"
    assert TimelineEvent.objects.filter(fault=room.fault, kind=EventKind.CONFERENCE_REQUESTED).count() == 1
    header = section(room.page(room.stakeholder), "header")
    assert "Starting…" in header and "Join the conference" not in header

    room.work(Channel.DINGTALK_CONFERENCE)
    started = TimelineEvent.objects.get(fault=room.fault, kind=EventKind.CONFERENCE_STARTED)
    assert started.data["transport"] == "sandbox"
    for u in (room.stakeholder, room.commander_user):
        header = section(room.page(u), "header")
        assert "Starting…" not in header
        assert f'href="#sandbox-conference-{started.data["url"].rsplit("-", 1)[1]}"' in header
        assert "Join the conference" in header
    assert "Start a new conference call" in room.page(room.commander_user)
    sandbox = section(room.page(room.stakeholder), "sandbox")
    assert "Video conference started for the checked-in members" in sandbox


def test_a_stakeholder_sees_no_conference_button_and_is_refused_and_so_is_a_handler(room):
    html = room.page(room.stakeholder)
    assert "Start conference call" not in html and "/act/conference/" not in html
    assert room.act(room.stakeholder, "conference").status_code == 403
    refused = room.act(room.handler_user, "conference")
    assert refused.status_code == 403
    assert "Only this fault&#x27;s commander" in refused.content.decode()
    assert not TimelineEvent.objects.filter(fault=room.fault, kind=EventKind.CONFERENCE_REQUESTED).exists()


def test_a_conference_on_a_recovered_fault_is_refused_with_the_reason(room):
    services.fault_mark_recovered(fault=room.fault, actor=None)
    assert "Start conference call" not in room.page(room.commander_user)
    response = room.act(room.commander_user, "conference")
    assert response.status_code == 409
    assert f"Fault #{room.fault.pk} is recovered; cannot start a conference." in response.content.decode()


def test_a_conference_nobody_can_host_shows_that_it_could_not_start(room):
    room.act(room.commander_user, "conference")  # nobody has checked in: no host
    room.work(Channel.DINGTALK_CONFERENCE)
    header = section(room.page(room.commander_user), "header")
    assert "Could not start" in header and "nobody who has checked in has a DingTalk unionId" in header
    assert "Start conference call" in header  # he may try again


# --- the group and the sandbox --------------------------------------------------------------


def test_the_header_shows_the_group_being_created_then_ready_in_the_sandbox(room):
    header = section(room.page(room.stakeholder), "header")
    assert "Collaboration group" in header and "being created…" in header
    room.work()
    header = section(room.page(room.stakeholder), "header")
    assert f'<a href="#sandbox">P1 #{room.fault.pk} Checkout fails</a>' in header
    assert "sandbox" in header and "2 members" in header


def test_the_sandbox_shows_the_group_the_card_and_the_calls(room):
    assert 'data-region="sandbox"' not in room.page(room.stakeholder)  # nothing sent yet
    room.work()
    room.tick()
    room.work()
    html = room.page(room.stakeholder)
    sandbox = section(html, "sandbox")
    assert f"Group “P1 #{room.fault.pk} Checkout fails” created" in sandbox
    assert "Members: Zhang Wei, Han Meimei" in sandbox
    assert "Check-in card posted to the group" in sandbox
    assert "DING call to Zhang Wei" in sandbox and "DING call to Han Meimei" in sandbox
    assert "30% of payments fail" in sandbox  # the card and the page's text
    # The card, as it looks in the group; a stakeholder is not in the group and has no button.
    assert "Check-in card in the group" in sandbox and "/act/card_check_in/" not in sandbox
    assert len(SandboxMessage.objects.filter(fault=room.fault)) == 4
    assert '<a href="#sandbox">' in html  # from the jump links and the header


def test_checking_in_from_the_sandbox_card_stops_that_persons_dialling(room):
    # Both were paged at the declaration: their DING calls are queued.
    room.work(Channel.DINGTALK_GROUP_CREATE, Channel.DINGTALK_CARD)  # the group and the card
    room.tick()
    pages = Delivery.objects.filter(fault=room.fault, purpose=Delivery.Purpose.PAGE)
    assert set(pages.values_list("person__name", "status")) == {("Zhang Wei", Status.PENDING), ("Han Meimei", Status.PENDING)}
    roles = section(room.page(room.handler_user), "roles")
    assert roles.count("Dialling since") == 2

    html = room.page(room.handler_user)
    assert "/act/card_check_in/" in section(html, "sandbox")
    card = Delivery.objects.get(fault=room.fault, channel=Channel.DINGTALK_CARD)
    response = room.act(room.handler_user, "card_check_in", **{"card-card": card.pk})
    assert response.status_code == 302

    han = RoleAssignment.objects.get(fault=room.fault, person=room.handler)
    assert han.checked_in_at is not None
    assert TimelineEvent.objects.get(fault=room.fault, kind=EventKind.ROLE_CHECKED_IN).data["via"] == "card"
    assert pages.get(person=room.handler).status == Status.CANCELLED
    assert pages.get(person=room.commander).status == Status.PENDING  # his dialling goes on
    engagement = Engagement.objects.get(fault=room.fault, person=room.handler)
    assert engagement.checked_in_at is not None and engagement.ended_at is not None and engagement.next_check_at is None

    html = room.page(room.stakeholder)
    roles = section(html, "roles")
    han_row = roles[roles.index("Han Meimei") : roles.index("</li>", roles.index("Han Meimei"))]
    assert "Checked in" in han_row and "Dialling stopped, 1 pending page cancelled" in han_row
    zhang_row = roles[roles.index("Zhang Wei") : roles.index("</li>", roles.index("Zhang Wei"))]
    assert "Dialling since" in zhang_row and "Waiting" in zhang_row
    assert "1 pending page to Han Meimei cancelled" in section(html, "timeline")
    card_html = section(html, "sandbox")
    assert "Han Meimei <span class=\"muted\">checked in</span>" in card_html

    # The queued call to her is never made; Zhang Wei's is.
    room.work()
    assert not SandboxMessage.objects.filter(fault=room.fault, channel=Channel.DINGTALK_DING_PHONE, recipient="Han Meimei").exists()
    assert SandboxMessage.objects.filter(fault=room.fault, channel=Channel.DINGTALK_DING_PHONE, recipient="Zhang Wei").exists()
    # Once in, the card offers her no button any more.
    assert "/act/card_check_in/" not in section(room.page(room.handler_user), "sandbox")


def test_only_members_of_the_group_may_check_in_from_the_sandbox_card(room):
    room.work()
    card = Delivery.objects.get(fault=room.fault, channel=Channel.DINGTALK_CARD)
    assert room.act(room.stakeholder, "card_check_in", **{"card-card": card.pk}).status_code == 403

    # Sun Qi is a handler now, but his joining the group has not gone through yet.
    sun_user = user("sun", "incidents.view_fault")
    sun = people.person("Sun Qi", user=sun_user)
    room.commit(services.role_assign, fault=room.fault, person=sun, role=RoleAssignment.Role.EMERGENCY_HANDLER, actor=None)
    assert "/act/card_check_in/" not in room.page(sun_user)
    refused = room.act(sun_user, "card_check_in", **{"card-card": card.pk})
    assert refused.status_code == 403
    assert "Only members of the collaboration group can use its card." in refused.content.decode()
    assert RoleAssignment.objects.get(fault=room.fault, person=sun).checked_in_at is None

    room.work(Channel.DINGTALK_GROUP_MEMBER_ADD)
    assert "/act/card_check_in/" in room.page(sun_user)
    assert room.act(sun_user, "card_check_in", **{"card-card": card.pk}).status_code == 302
    assert RoleAssignment.objects.get(fault=room.fault, person=sun).checked_in_at is not None


def test_a_card_that_did_not_go_through_the_sandbox_cannot_be_clicked_from_the_page(room):
    room.work()
    card = Delivery.objects.get(fault=room.fault, channel=Channel.DINGTALK_CARD)
    Delivery.objects.filter(pk=card.pk).update(transport="dingtalk")
    response = room.act(room.handler_user, "card_check_in", **{"card-card": card.pk})
    assert response.status_code == 400 and "Select a valid choice." in response.content.decode()


# --- the recovery summary -----------------------------------------------------------------


def test_the_recovery_summary_shows_stage_times_and_sla_verdicts(room):
    services.task_create(
        fault=room.fault, assignee=room.handler, kind=Task.Kind.RECOVER, title="Roll back", actor=room.commander_user
    )
    room.work()  # the group and the card: the first messages that reached someone
    services.role_check_in(fault=room.fault, person=room.commander, actor=None)
    assert 'data-region="summary"' not in room.page(room.stakeholder)

    services.fault_mark_recovered(fault=room.fault, actor=room.commander_user)
    summary = Fault.objects.get(pk=room.fault.pk).summary
    html = room.page(room.stakeholder)
    panel = section(html, "summary")
    assert "Recovery metrics" in panel
    for stage in ("Declare", "Notify", "Check in", "Engage", "Mitigate", "Recover"):
        assert f"<dt>{stage}</dt>" in panel
    assert f"{summary.sla_met} of {summary.sla_total} SLAs met" in panel
    assert "Zhang Wei checked in (commander)" in panel
    assert "Han Meimei checked in (fault handler)" in panel
    assert "Han Meimei took up “Roll back”" in panel
    assert "First message reached someone" in panel and "Progress updates (0 posted), longest gap" in panel
    assert panel.count('class="pill verdict-met"') == summary.sla_met
    assert 'class="pill verdict-pending"' in panel  # Han Meimei's check-in and the task were cut short
    assert '<a href="#summary">' in html


def test_the_recovery_summary_speaks_chinese(room):
    services.fault_mark_recovered(fault=room.fault, actor=None)
    c = client_for(room.stakeholder)
    c.post("/i18n/setlang/", {"language": "zh-hans", "next": "/faults/"})
    panel = section(c.get(f"/faults/{room.fault.pk}/").content.decode(), "summary")
    assert "恢复指标" in panel and "通知" in panel and "恢复" in panel
    assert "Zhang Wei 签到（指挥官）" in panel


# --- a suspected cause found later ----------------------------------------------------------


def test_the_commander_adds_a_suspected_cause_and_its_on_call_contacts_are_pulled_in(room):
    from roster.models import Business

    orders = Business.objects.create(name="Orders", slug="orders-later")
    contact = people.person("Zhao Min")
    orders.stability_contact = contact  # nobody on its schedule: the stability contact stands in
    orders.save()
    assert "Add a suspected cause" in section(room.page(room.commander_user), "controls")

    response = room.act(room.commander_user, "suspect", **{"suspect-business": orders.pk})
    assert response.status_code == 302
    assert room.fault.suspected_cause_businesses.filter(pk=orders.pk).exists()
    assert TimelineEvent.objects.filter(fault=room.fault, kind=EventKind.FAULT_SUSPECT_ADDED).exists()
    room.tick()
    assert Engagement.objects.filter(fault=room.fault, person=contact).exists()

    again = room.act(room.commander_user, "suspect", **{"suspect-business": orders.pk})
    assert again.status_code == 400
    assert "already a suspected cause" in again.content.decode()
    assert room.act(room.stakeholder, "suspect", **{"suspect-business": orders.pk}).status_code == 403

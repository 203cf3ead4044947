"""Demo data for `make run`: people, businesses, SLA policies, groups and demo users, and a
roster that uses every part of it: teams, on-call schedules with layers and an override,
the shipped commander rules filled in, a fault-handler-on-duty schedule, escalation
policies and notification groups.

Idempotent: running it again changes nothing but re-prints the demo passwords, which are
generated once and kept in WARROOM_DATA_DIR/demo-credentials.json. Roster rows are only
created when missing, so what an admin changed in /admin/ stays as it is.
"""

import datetime as dt
import json
import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.management.base import BaseCommand
from django.db import transaction

from roster.models import (
    Business,
    CandidateKind,
    EscalationPolicy,
    EscalationStep,
    NotificationGroup,
    Override,
    Person,
    Rotation,
    RotationMember,
    Schedule,
    Team,
    Weekday,
)
from django.utils import timezone

PEOPLE = [
    # key, name, phone, DingTalk userId, username
    ("zhang", "Zhang Wei 张伟", "+8613800000001", "zhangwei", "lead"),
    ("li", "Li Lei 李雷", "+8613800000002", "lilei", None),
    ("han", "Han Meimei 韩梅梅", "+8613800000003", "hanmeimei", "oncall"),
    ("wang", "Wang Fang 王芳", "+8613800000004", "wangfang", "handler"),
    ("chen", "Chen Jie 陈杰", "+8613800000005", "chenjie", None),
    ("liu", "Liu Yang 刘洋", "+8613800000006", "liuyang", None),
    ("zhao", "Zhao Min 赵敏", "+8613800000007", "zhaomin", None),
    ("sun", "Sun Li 孙丽", "+8613800000008", "sunli", None),
    ("zhou", "Zhou Xin 周欣", "+8613800000009", "zhouxin", "viewer"),
]

# Messages to people go out in their preferred language: Chinese for most of the team, and
# English for one, so that the demo shows both.
PREFERS_ENGLISH = {"liu"}

BUSINESSES = [
    # slug, name, technical leader, stability contact, depends on
    ("payments", "Payments 支付", "wang", "chen", []),
    ("accounts", "Accounts 账户", "sun", "chen", []),
    ("orders", "Orders 订单", "liu", "zhao", ["payments", "accounts"]),
    ("logistics", "Logistics 物流", "sun", "zhao", ["orders"]),
]

GROUPS = {
    "Stakeholders": ["incidents.view_fault"],
    "Responders": ["incidents.view_fault", "incidents.add_fault"],
    "Stability": ["incidents.view_fault", "incidents.add_fault", "incidents.manage_fault"],
}

TEAMS = [
    # slug, name, leader, members
    ("stability-department", "Stability department", "zhang", ["zhang", "li", "zhao"]),  # shipped by a migration
    ("payments-tech", "Payments tech team", "wang", ["wang", "chen", "han"]),
    ("orders-tech", "Orders tech team", "liu", ["liu", "zhao", "sun"]),
]
BUSINESS_TEAMS = {"payments": "payments-tech", "accounts": "payments-tech", "orders": "orders-tech", "logistics": "orders-tech"}

# Rotations start on a Monday long past, so that every member has had turns.
ROTATION_START = dt.date(2025, 1, 6)
WEEKDAYS = [Weekday.MONDAY, Weekday.TUESDAY, Weekday.WEDNESDAY, Weekday.THURSDAY, Weekday.FRIDAY]
WEEKEND = [Weekday.SATURDAY, Weekday.SUNDAY]

SCHEDULES = [
    # slug, name, time zone, description, [(rotation name, layer, length, unit, hand-off, weekdays, members)]
    ("on-duty-managers", "On-duty managers", "Asia/Shanghai", "", [
        ("Weekly managers", 1, 1, Rotation.Unit.WEEKS, dt.time(9, 0), None, ["zhang", "li"]),
    ]),
    ("fault-handler-on-duty", "Fault handler on duty", "Asia/Shanghai", "", [
        ("Weekdays", 1, 1, Rotation.Unit.DAYS, dt.time(9, 0), None, ["han", "wang", "chen"]),
        ("Weekends", 2, 1, Rotation.Unit.WEEKS, dt.time(9, 0), WEEKEND, ["liu", "sun"]),
    ]),
    ("payments-primary", "Payments primary", "Asia/Shanghai", "Emergency contacts of Payments and Accounts.", [
        ("Daily", 1, 1, Rotation.Unit.DAYS, dt.time(10, 0), None, ["wang", "chen", "han"]),
    ]),
    ("orders-primary", "Orders primary", "Asia/Shanghai", "Emergency contacts of Orders; 12-hour shifts.", [
        ("Day and night", 1, 12, Rotation.Unit.HOURS, dt.time(8, 0), None, ["liu", "zhao", "sun"]),
    ]),
    ("logistics-europe", "Logistics Europe", "Europe/Berlin", "The Berlin team covers logistics; DST-aware.", [
        ("Working days", 1, 1, Rotation.Unit.WEEKS, dt.time(9, 0), WEEKDAYS, ["sun", "zhao"]),
    ]),
]
BUSINESS_SCHEDULES = {"payments": "payments-primary", "accounts": "payments-primary", "orders": "orders-primary",
                      "logistics": "logistics-europe"}

NOTIFICATION_GROUPS = [
    ("Payments war room", NotificationGroup.Kind.DINGTALK_CONVERSATION, {"open_conversation_id": "cidDemoPayments=="}),
    ("Stability broadcast", NotificationGroup.Kind.DINGTALK_ROBOT_WEBHOOK, {
        "webhook_url": "https://oapi.dingtalk.com/robot/send?access_token=demo-token",
        "webhook_secret": "SECdemo0000000000000000000000000000000000000000000000000000000000",
    }),
]
BUSINESS_NOTIFY = {
    # slug: (people, groups)
    "payments": (["zhou", "zhang"], ["Payments war room", "Stability broadcast"]),
    "accounts": (["zhou"], ["Stability broadcast"]),
    "orders": (["zhou"], ["Stability broadcast"]),
    "logistics": (["zhou"], []),
}

S = CandidateKind
ESCALATION_POLICIES = [
    # name, default, repeat every (min), repeat limit, [(after minutes, kind, person/team/schedule key)]
    ("Standard", True, 10, 3, [
        (5, S.STABILITY_CONTACT, None),
        (10, S.TECHNICAL_LEADER, None),
        (15, S.TEAM_LEADER, "stability-department"),
    ]),
    ("Payments critical", False, 5, 6, [
        (3, S.SCHEDULE, "payments-primary"),
        (8, S.STABILITY_CONTACT, None),
        (15, S.SCHEDULE, "on-duty-managers"),
    ]),
]
BUSINESS_POLICY = {"payments": "Payments critical"}

USER_GROUPS = {"lead": "Stability", "oncall": "Responders", "handler": "Responders", "viewer": "Stakeholders"}


class Command(BaseCommand):
    help = "Load the demo data set (idempotent) and print the demo users' passwords."

    def handle(self, *args, **options):
        passwords = self._passwords()
        with transaction.atomic():
            self._load(passwords)
        self.stdout.write("Demo users (username / password):")
        for username, password in passwords.items():
            self.stdout.write(f"  {username:<8} {password}")

    def _passwords(self) -> dict:
        path = settings.DATA_DIR / "demo-credentials.json"
        names = ["admin", *USER_GROUPS]
        stored = json.loads(path.read_text()) if path.exists() else {}
        passwords = {name: stored.get(name) or secrets.token_urlsafe(9) for name in names}
        if passwords != stored:
            path.write_text(json.dumps(passwords, indent=2))
            path.chmod(0o600)
        return passwords

    def _load(self, passwords: dict) -> None:
        User = get_user_model()
        groups = {}
        for name, perms in GROUPS.items():
            group, _ = Group.objects.get_or_create(name=name)
            for perm in perms:
                app_label, codename = perm.split(".")
                group.permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
            groups[name] = group

        admin, _ = User.objects.get_or_create(username="admin", defaults={"email": "admin@example.com"})
        admin.is_staff = admin.is_superuser = True
        admin.set_password(passwords["admin"])
        admin.save()

        people = {}
        for key, name, phone, ding, username in PEOPLE:
            user = None
            if username:
                user, _ = User.objects.get_or_create(username=username)
                user.first_name = name
                user.is_staff = username == "lead"
                user.set_password(passwords[username])
                user.save()
                user.groups.add(groups[USER_GROUPS[username]])
            person, _ = Person.objects.update_or_create(
                dingtalk_user_id=ding,
                defaults={
                    "name": name,
                    "phone": phone,
                    "email": f"{ding}@example.com",
                    "dingtalk_union_id": f"union-{ding}",
                    "time_zone": "Asia/Shanghai",
                    "language": "en" if key in PREFERS_ENGLISH else "zh-hans",
                    "user": user,
                },
            )
            people[key] = person

        businesses = {}
        for slug, name, leader, contact, _ in BUSINESSES:
            businesses[slug], _ = Business.objects.update_or_create(
                slug=slug,
                defaults={"name": name, "technical_leader": people[leader], "stability_contact": people[contact]},
            )
        for slug, *_, depends in BUSINESSES:
            businesses[slug].depends_on.set([businesses[d] for d in depends])

        self._load_roster(people, businesses)

    def _load_roster(self, people: dict, businesses: dict) -> None:
        teams = {}
        for slug, name, leader, members in TEAMS:
            team, created = Team.objects.get_or_create(slug=slug, defaults={"name": name})
            if created or team.leader_id is None:
                team.leader = people[leader]
                team.save()
                team.members.set([people[m] for m in members])
            teams[slug] = team

        schedules = {}
        for slug, name, zone, description, rotations in SCHEDULES:
            schedule, _ = Schedule.objects.get_or_create(
                slug=slug, defaults={"name": name, "time_zone": zone, "description": description}
            )
            schedules[slug] = schedule
            if schedule.rotations.exists():
                continue  # keep an admin's layers
            for rotation_name, layer, length, unit, hand_off, weekdays, members in rotations:
                rotation = Rotation.objects.create(
                    schedule=schedule,
                    name=rotation_name,
                    layer=layer,
                    shift_length=length,
                    shift_unit=unit,
                    start_date=ROTATION_START,
                    hand_off_time=hand_off,
                    active_weekdays=list(weekdays or Weekday.values),
                )
                RotationMember.objects.bulk_create(
                    RotationMember(rotation=rotation, person=people[m], position=i) for i, m in enumerate(members, 1)
                )

        # An override from tomorrow 09:00 to 21:00 Shanghai time: Li Lei stands in for the fault handler.
        handlers = schedules["fault-handler-on-duty"]
        if not handlers.overrides.exists():
            tomorrow = timezone.now().astimezone(handlers.zone).date() + dt.timedelta(days=1)
            start = dt.datetime.combine(tomorrow, dt.time(9, 0), tzinfo=handlers.zone)
            Override.objects.create(
                schedule=handlers, person=people["li"], start=start, end=start + dt.timedelta(hours=12),
                reason="Covers the fault-handler duty during a training",
            )

        groups = {}
        for name, kind, fields in NOTIFICATION_GROUPS:
            groups[name], _ = NotificationGroup.objects.get_or_create(name=name, defaults={"kind": kind, **fields})

        policies = {}
        for name, is_default, every, limit, steps in ESCALATION_POLICIES:
            policy, created = EscalationPolicy.objects.get_or_create(
                name=name,
                defaults={
                    "is_default": is_default and not EscalationPolicy.objects.filter(is_default=True).exists(),
                    "repeat_last_step_every": every,
                    "repeat_limit": limit,
                },
            )
            policies[name] = policy
            if created:
                for position, (after, kind, key) in enumerate(steps, 1):
                    target = {S.TEAM_LEADER: {"team": teams.get(key)}, S.SCHEDULE: {"schedule": schedules.get(key)}}
                    EscalationStep.objects.create(
                        policy=policy, position=position, after_minutes=after, kind=kind, **target.get(kind, {})
                    )

        for slug, business in businesses.items():
            changed = False
            for field, value in [
                ("owning_team", teams[BUSINESS_TEAMS[slug]]),
                ("emergency_schedule", schedules[BUSINESS_SCHEDULES[slug]]),
                ("escalation_policy", policies.get(BUSINESS_POLICY.get(slug))),
            ]:
                if getattr(business, f"{field}_id") is None and value is not None:
                    setattr(business, field, value)
                    changed = True
            if changed:
                business.save()
            recipients, group_names = BUSINESS_NOTIFY[slug]
            if not business.notification_recipients.exists():
                business.notification_recipients.set([people[p] for p in recipients])
            if not business.notification_groups.exists():
                business.notification_groups.set([groups[g] for g in group_names])

"""Demo data for `make run`: people, businesses, SLA policies, groups and demo users.

Idempotent: running it again changes nothing but re-prints the demo passwords, which are
generated once and kept in WARROOM_DATA_DIR/demo-credentials.json.
"""

import json
import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.management.base import BaseCommand
from django.db import transaction

from roster.models import Business, Person

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

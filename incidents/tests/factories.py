"""Small explicit factories. Faults are made through the real services."""

import itertools

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission

from incidents import services
from incidents.models import Level, RoleAssignment
from roster.models import Business, Person

_n = itertools.count(1)


def user(username=None, *perms):
    username = username or f"user{next(_n)}"
    # No password: hashing one costs a third of a second, and API tests authenticate directly.
    u = get_user_model().objects.create_user(username=username, password=None)
    for perm in perms:
        app_label, codename = perm.split(".")
        u.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    return get_user_model().objects.get(pk=u.pk)  # fresh, so the permission cache is empty


def person(name=None, user=None):
    n = next(_n)
    return Person.objects.create(name=name or f"Person {n}", user=user, phone=f"+86138{n:08d}")


def business(name=None):
    n = next(_n)
    name = name or f"Business {n}"
    return Business.objects.create(name=name, slug=f"b{n}")


def fault(*, level=Level.P2, commander=None, fault_handler=None, affected=None, suspects=(), actor=None, **kw):
    return services.fault_declare(
        title=kw.pop("title", "Checkout fails"),
        level=level,
        impact=kw.pop("impact", "Some payments fail"),
        affected_business=affected or business(),
        suspected_cause_businesses=suspects,
        commander=commander,
        fault_handler=fault_handler,
        actor=actor,
        **kw,
    )


class Cast:
    """The people around one fault: a commander, a handler, a stakeholder, an outsider."""

    def __init__(self, level=Level.P2, **declare):
        self.commander_user = user("commander", "incidents.view_fault")
        self.commander = person("Zhang Wei", self.commander_user)
        self.handler_user = user("handler", "incidents.view_fault")
        self.handler = person("Li Lei", self.handler_user)
        self.stakeholder = user("stakeholder", "incidents.view_fault")
        self.outsider = user("outsider")
        self.manager = user("manager", "incidents.view_fault", "incidents.manage_fault")
        self.declarer = user("declarer", "incidents.view_fault", "incidents.add_fault")
        self.fault = fault(level=level, commander=self.commander, **declare)
        services.role_assign(
            fault=self.fault, person=self.handler, role=RoleAssignment.Role.EMERGENCY_HANDLER, actor=None
        )
        self.fault.refresh_from_db()

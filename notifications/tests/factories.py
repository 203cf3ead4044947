"""Small explicit factories; faults are declared through the real service."""

import itertools

from incidents import services
from incidents.models import Level
from roster.models import Business, Person, PagingMethod

_n = itertools.count(1)

M = PagingMethod


def person(name: str, *, methods=(M.DINGTALK_DING_PHONE, M.ALIYUN_VOICE, M.ALIYUN_SMS), **contact) -> Person:
    n = next(_n)
    fields = {
        "phone": f"+86138{n:08d}",
        "email": f"p{n}@example.com",
        "dingtalk_user_id": f"user{n}",
        "dingtalk_union_id": f"union{n}",
    }
    fields.update(contact)
    return Person.objects.create(name=name, paging_methods=list(methods), **fields)


def fault(*, commander: Person | None = None, level=Level.P1, title="Checkout fails"):
    n = next(_n)
    business = Business.objects.create(name=f"Payments {n}", slug=f"payments-{n}")
    return services.fault_declare(
        title=title, level=level, impact="Some payments fail", affected_business=business, commander=commander
    )

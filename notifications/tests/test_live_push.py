"""The loopback provider pushes to a running server, as DingTalk and Alibaba Cloud do."""

import pytest

from incidents.models import TimelineEvent
from notifications.outbox.attempts import delivery_attempt
from notifications.outbox.rows import delivery_create, person_page
from notifications.models import Delivery

from . import factories
from .factories import M

pytestmark = pytest.mark.django_db(transaction=True)


def test_pushed_receipts_and_card_clicks_reach_the_product(live_server, providers, clock):
    li = factories.person("Li Lei", methods=(M.ALIYUN_SMS,))
    fault = factories.fault(commander=li)
    sms = person_page(fault=fault, person=li, page_key="p1", subject="P1", body="Check in")
    delivery_attempt(delivery_id=sms.pk)
    card = delivery_create(fault=fault, channel="dingtalk_card", target="cid1", idempotency_key="card")
    delivery_attempt(delivery_id=card.pk)

    status, answer = providers.push(
        f"{live_server.url}/notifications/receipts/receipt-secret/aliyun/sms/",
        [providers.sms_report(Delivery.objects.get(pk=sms.pk).provider_key, li.phone)],
    )
    assert (status, answer) == (200, {"code": 0, "msg": "接收成功"})

    body, headers = providers.card_click(Delivery.objects.get(pk=card.pk).provider_key, li.dingtalk_user_id)
    status, _ = providers.push(f"{live_server.url}/notifications/dingtalk/card-callback/", body, headers)
    assert status == 200

    assert Delivery.objects.get(pk=sms.pk).status == Delivery.Status.DELIVERED
    assert TimelineEvent.objects.filter(fault=fault, kind="role.checked_in", data__via="card").count() == 1

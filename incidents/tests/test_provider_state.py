"""A provider outage and its recovery, as the notifications app records them on a fault."""

import pytest

from incidents import services
from incidents.models import RecoverySummary

from .factories import Cast
from .test_api import client_for, url

pytestmark = pytest.mark.django_db


def test_an_outage_and_the_recovery_of_a_provider_read_back_from_the_timeline_api():
    cast = Cast()
    before = cast.fault.last_seq
    outage = services.provider_state_record(
        fault=cast.fault,
        outage=True,
        text="Alibaba Cloud SMS is failing for everyone",
        data={"transport": "aliyun_sms", "since": "2025-03-01T08:00:00+00:00", "failures": 5},
    )
    back = services.provider_state_record(
        fault=cast.fault,
        outage=False,
        text="Alibaba Cloud SMS answers again",
        data={"transport": "aliyun_sms", "since": "2025-03-01T08:00:00+00:00", "until": "2025-03-01T08:04:00+00:00",
              "seconds": 240},
    )
    assert (outage.seq, back.seq) == (before + 1, before + 2)
    assert (outage.kind, back.kind, outage.actor, back.actor) == ("provider.outage", "provider.recovered", None, None)

    # Recovery computes the summary over the whole timeline, these two events included.
    services.fault_mark_recovered(fault=cast.fault, actor=cast.commander_user)
    assert RecoverySummary.objects.get(fault=cast.fault).data["deliveries"] == {}

    response = client_for(cast.stakeholder).get(url(cast.fault, f"timeline/?after={before}"))
    assert response.status_code == 200
    down, up, recovered = response.json()
    assert (down["kind"], down["actor"], down["data"]) == (
        "provider.outage",
        "War Room",
        {"text": "Alibaba Cloud SMS is failing for everyone", "transport": "aliyun_sms",
         "since": "2025-03-01T08:00:00+00:00", "failures": 5},
    )
    assert (up["kind"], up["data"]["text"], up["data"]["seconds"]) == (
        "provider.recovered", "Alibaba Cloud SMS answers again", 240,
    )
    assert recovered["kind"] == "fault.recovered"

"""The war room's alerts panel: `{% load alerts_panel %}{% fault_alerts fault %}`.

Loaded by name from the war-room templates, so that nothing outside `alerts` imports it.
"""

from django import template
from django.db.models import Count, Q

from ..models import Alert

register = template.Library()

SHOWN = 50  # the latest; the fault-alerts API has them all


@register.inclusion_tag("alerts/panel.html")
def fault_alerts(fault):
    """The fault's latest alerts, newest first; renders nothing when it has none."""
    found = Alert.objects.filter(fault=fault).select_related("integration").order_by("-received_at", "-id")
    alerts = list(found[:SHOWN])
    if len(alerts) < SHOWN:
        total, firing = len(alerts), sum(1 for a in alerts if a.status == Alert.Status.FIRING)
    else:
        counts = found.aggregate(total=Count("id"), firing=Count("id", filter=Q(status=Alert.Status.FIRING)))
        total, firing = counts["total"], counts["firing"]
    return {"fault": fault, "alerts": alerts, "total": total, "firing": firing, "truncated": total > len(alerts)}

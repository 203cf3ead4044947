"""The shipped commander rules, as the fault process defines them.

P1/P2 → the stability department's leader, or else whoever is on call as on-duty manager;
P3/P4 → the affected business's technical team leader, or else its stability contact.

The team and the two schedules are created empty: an admin names the leader and fills the
rotations. Until then the rules fall through to the next candidate (or nobody), and the
fault's timeline says why.
"""

from django.db import migrations

STABILITY_TEAM = ("stability-department", "Stability department")
ON_DUTY_MANAGERS = ("on-duty-managers", "On-duty managers")
FAULT_HANDLERS = ("fault-handler-on-duty", "Fault handler on duty")


def ship_default_rules(apps, schema_editor):
    Team = apps.get_model("roster", "Team")
    Schedule = apps.get_model("roster", "Schedule")
    CommanderRule = apps.get_model("roster", "CommanderRule")
    CommanderCandidate = apps.get_model("roster", "CommanderCandidate")

    team, _ = Team.objects.get_or_create(slug=STABILITY_TEAM[0], defaults={"name": STABILITY_TEAM[1]})
    managers, _ = Schedule.objects.get_or_create(
        slug=ON_DUTY_MANAGERS[0],
        defaults={"name": ON_DUTY_MANAGERS[1], "description": "Managers on duty; commanders of P1/P2 faults."},
    )
    if not Schedule.objects.filter(purpose="fault_handler").exists():
        Schedule.objects.get_or_create(
            slug=FAULT_HANDLERS[0],
            defaults={
                "name": FAULT_HANDLERS[1],
                "purpose": "fault_handler",
                "description": "The monitoring duty engineer, who initiates automatically declared faults.",
            },
        )

    severe = [{"kind": "team_leader", "team": team}, {"kind": "schedule", "schedule": managers}]
    business = [{"kind": "technical_leader"}, {"kind": "stability_contact"}]
    notes = {
        1: "Stability department leader, or the on-duty manager",
        3: "The business's technical team leader, or its stability contact",
    }
    for level, candidates, note in [
        (1, severe, notes[1]), (2, severe, notes[1]), (3, business, notes[3]), (4, business, notes[3])
    ]:
        rule, created = CommanderRule.objects.get_or_create(level=level, defaults={"note": note})
        if created:
            for position, candidate in enumerate(candidates, start=1):
                CommanderCandidate.objects.create(rule=rule, position=position, **candidate)


class Migration(migrations.Migration):
    dependencies = [("roster", "0003_schedules_rules_and_escalation")]

    operations = [migrations.RunPython(ship_default_rules, migrations.RunPython.noop)]

from datetime import timedelta

from django.db import migrations

M = lambda n: timedelta(minutes=n)  # noqa: E731

# level: notify within, check in within, task response within, progress every, renotify every
DEFAULTS = {
    1: (M(5), M(10), M(15), M(15), M(30)),
    2: (M(10), M(15), M(30), M(30), M(60)),
    3: (M(30), M(30), M(60), M(60), M(120)),
    4: (M(60), M(60), M(240), M(240), M(480)),
}


def create_defaults(apps, schema_editor):
    SLAPolicy = apps.get_model("incidents", "SLAPolicy")
    for level, (notify, check_in, task, progress, renotify) in DEFAULTS.items():
        SLAPolicy.objects.get_or_create(
            level=level,
            defaults={
                "notify_within": notify,
                "check_in_within": check_in,
                "task_response_within": task,
                "progress_update_every": progress,
                "renotify_every": renotify,
            },
        )


class Migration(migrations.Migration):
    dependencies = [("incidents", "0001_fault_core")]

    operations = [migrations.RunPython(create_defaults, migrations.RunPython.noop)]

"""Create the django-q2 schedules that the maintenance cluster runs: reconcile, cleanup and prune.

update_or_create keyed by name, so running the migration again (or on a database that already has the rows)
leaves one schedule of each kind. catch_up is off in the maintenance cluster's settings, so a cluster that
was down does not replay the slots it missed.
"""

from django.db import migrations

SCHEDULES = (
    # (name, function, schedule type, minutes between runs)
    ("flashvsr-reconcile-tasks", "tasks_app.maintenance.scheduled_reconcile", "I", 1),
    ("flashvsr-prune-media", "tasks_app.maintenance.scheduled_prune", "H", None),
    ("flashvsr-cleanup-tasks", "tasks_app.maintenance.scheduled_cleanup", "D", None),
)
MAINTENANCE_CLUSTER = "maintenance"


def create_schedules(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    for name, func, schedule_type, minutes in SCHEDULES:
        Schedule.objects.update_or_create(
            name=name,
            defaults={
                "func": func,
                "schedule_type": schedule_type,
                "minutes": minutes,
                "repeats": -1,
                "cluster": MAINTENANCE_CLUSTER,
            },
        )


def delete_schedules(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    Schedule.objects.filter(name__in=[name for name, *_ in SCHEDULES]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("tasks_app", "0001_initial"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
    ]

    operations = [migrations.RunPython(create_schedules, delete_schedules)]

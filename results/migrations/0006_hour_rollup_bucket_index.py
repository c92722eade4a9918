"""An index on the hour rollups' bucket, for the last day or month of every series (the summary).

PostgreSQL builds it CONCURRENTLY: the hour table holds up to 400 days, and a plain CREATE INDEX
would block ingestion on every instance while it builds."""

from django.db import migrations, models

INDEX = models.Index(fields=["bucket"], name="hour_rollup_bucket")


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("CREATE INDEX CONCURRENTLY IF NOT EXISTS hour_rollup_bucket ON results_hourrollup (bucket)")
    else:
        schema_editor.add_index(apps.get_model("results", "HourRollup"), INDEX)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX CONCURRENTLY IF EXISTS hour_rollup_bucket")
    else:
        schema_editor.remove_index(apps.get_model("results", "HourRollup"), INDEX)


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run inside a transaction

    dependencies = [("results", "0005_compact_rollups")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.AddIndex(model_name="hourrollup", index=INDEX)],
            database_operations=[migrations.RunPython(create, drop)],
        )
    ]

"""The results' single-column agent and endpoint indexes go: the (agent|endpoint, checked_at) ones serve
the same lookups, and each index is one more write per stored result."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("agents", "0006_config_version_per_section"),
        ("endpoints", "0002_initial"),
        ("results", "0008_partition_results"),
    ]

    operations = [
        migrations.AlterField(
            model_name="checkresult",
            name="agent",
            field=models.ForeignKey(
                db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name="results", to="agents.agent"
            ),
        ),
        migrations.AlterField(
            model_name="checkresult",
            name="endpoint",
            field=models.ForeignKey(
                db_constraint=False,
                db_index=False,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="results",
                to="endpoints.endpoint",
            ),
        ),
    ]

"""Existing tenants get their built-in agent-offline rule (new ones get it when created)."""

from django.db import migrations

from alerting.builtin import builtin_rules_ensure


def create(apps, schema_editor):
    tenant_ids = list(apps.get_model("tenants", "Tenant").objects.values_list("pk", flat=True))
    builtin_rules_ensure(apps.get_model("alerting", "AlertRule"), tenant_ids)


class Migration(migrations.Migration):
    dependencies = [("alerting", "0001_initial"), ("tenants", "0001_initial")]

    operations = [migrations.RunPython(create, migrations.RunPython.noop)]

"""Compact rollups: rows keyed by a 4-byte series id and a bucket, histograms as bytes, and a daily
tier for month- and year-long reports. The old rollup tables are dropped and the new ones rebuilt
from the raw results still kept (results.retention), by the same code as ingestion."""

import django.db.models.deletion
from django.core.management import call_command
from django.db import migrations, models

CHECK_TYPES = [
    ("ping", "Ping"),
    ("tcpconnect", "TCP connect"),
    ("udpconnect", "UDP probe"),
    ("httpget", "HTTP GET"),
    ("traceroute", "Traceroute"),
    ("plugin", "Plugin"),
]

# PostgreSQL adds one batch's histogram to a stored one inside the upsert (results/rollups.py). The
# common case only appends the new entries (cheap; a bucket may then repeat, which readers add up);
# past 240 bytes (40 entries) the row is compacted to one entry per bucket, in bucket order. Entries
# are 6 bytes: bucket (int2send) and count (int4send), as results/histogram.py encodes them.
HISTOGRAM_FUNCTIONS = """
CREATE OR REPLACE FUNCTION smotra_histogram_compact(h bytea) RETURNS bytea
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT COALESCE(string_agg(int2send(k::int2) || int4send(LEAST(c, 2147483647)::int4), ''::bytea ORDER BY k), ''::bytea)
  FROM (
    SELECT (get_byte(h, i) << 8) | get_byte(h, i + 1) AS k,
           sum((get_byte(h, i + 2)::bigint << 24) | (get_byte(h, i + 3) << 16)
               | (get_byte(h, i + 4) << 8) | get_byte(h, i + 5)) AS c
    FROM generate_series(0, length(h) - 6, 6) AS i
    GROUP BY 1
  ) AS entries
$$;
CREATE OR REPLACE FUNCTION smotra_histogram_add(a bytea, b bytea) RETURNS bytea
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN length(a) + length(b) > 240 THEN smotra_histogram_compact(a || b) ELSE a || b END
$$;
"""
JSON_HISTOGRAM_ADD = """
CREATE OR REPLACE FUNCTION smotra_histogram_add(a jsonb, b jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT COALESCE(a, '{}'::jsonb) || COALESCE(
    (SELECT jsonb_object_agg(key, COALESCE((a ->> key)::bigint, 0) + value::bigint) FROM jsonb_each_text(b)),
    '{}'::jsonb)
$$;
"""


def create_functions(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP FUNCTION IF EXISTS smotra_histogram_add(jsonb, jsonb)")
        schema_editor.execute(HISTOGRAM_FUNCTIONS)


def drop_functions(apps, schema_editor):
    """Back to migration 0002's JSON merge, which the old tables' code needs."""
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP FUNCTION IF EXISTS smotra_histogram_add(bytea, bytea)")
        schema_editor.execute("DROP FUNCTION IF EXISTS smotra_histogram_compact(bytea)")
        schema_editor.execute(JSON_HISTOGRAM_ADD)


def rebuild(apps, schema_editor):
    # Only where results exist: a new database has nothing to add up. This runs today's rebuild
    # code; a later change to the rollup tables must keep this step working (or replace it).
    if apps.get_model("results", "CheckResult").objects.exists():
        call_command("rebuild_rollups", verbosity=0)


def rollup(name: str):
    return migrations.CreateModel(
        name=name,
        fields=[
            ("bucket", models.DateTimeField(help_text="Start of the bucket (UTC), by the results' own timestamps.")),
            ("check_count", models.PositiveIntegerField(default=0)),
            ("success_count", models.PositiveIntegerField(default=0)),
            ("failure_count", models.PositiveIntegerField(default=0)),
            ("packets_sent", models.PositiveIntegerField(default=0)),
            ("packets_received", models.PositiveIntegerField(default=0)),
            ("latency_count", models.PositiveIntegerField(default=0)),
            ("latency_sum", models.FloatField(default=0.0)),
            ("latency_min", models.FloatField(blank=True, null=True)),
            ("latency_max", models.FloatField(blank=True, null=True)),
            ("histogram", models.BinaryField(default=b"")),
            (
                "pk",
                models.CompositePrimaryKey(
                    "series", "bucket", blank=True, editable=False, primary_key=True, serialize=False
                ),
            ),
            (
                "series",
                models.ForeignKey(
                    db_index=False,
                    on_delete=django.db.models.deletion.CASCADE,
                    related_name="+",
                    to="results.rollupseries",
                ),
            ),
        ],
        options={"abstract": False},
    )


class Migration(migrations.Migration):
    dependencies = [
        ("agents", "0006_config_version_per_section"),
        ("results", "0004_result_keyset_index"),
    ]

    operations = [
        migrations.DeleteModel(name="MinuteRollup"),
        migrations.DeleteModel(name="HourRollup"),
        migrations.CreateModel(
            name="RollupSeries",
            fields=[
                ("id", models.AutoField(primary_key=True, serialize=False)),
                ("endpoint_id", models.UUIDField()),
                ("check_type", models.CharField(choices=CHECK_TYPES, max_length=16)),
                (
                    "agent",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="+", to="agents.agent"
                    ),
                ),
            ],
            options={
                "verbose_name_plural": "rollup series",
                "constraints": [
                    models.UniqueConstraint(
                        fields=("endpoint_id", "agent", "check_type"),
                        name="rollup_series_unique",
                        violation_error_message="This endpoint, agent and check type already have a series.",
                    )
                ],
            },
        ),
        rollup("MinuteRollup"),
        rollup("HourRollup"),
        rollup("DayRollup"),
        migrations.RunPython(create_functions, drop_functions),
        migrations.RunPython(rebuild, migrations.RunPython.noop),
    ]

"""Histograms are compacted past 512 bytes (85 entries) instead of 240.

A day row of a 5-minute ping holds some 40-80 distinct buckets: past 240 bytes every batch's upsert
compacted it again (unnest, group, re-aggregate), the costliest part of the rollup upsert. Appended
entries now gather to 512 bytes first, so a day row is compacted once per several batches, and
minute and hour rows of common checks never are. (1,536 bytes made the upsert cheaper still, but
the day table five times wider, and the month-long reports that scan it slower.) Decoding adds
repeated buckets, so both forms mean the same and no row needs rewriting."""

from django.db import migrations

ADD = """
CREATE OR REPLACE FUNCTION smotra_histogram_add(a bytea, b bytea) RETURNS bytea
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN length(a) + length(b) > {limit} THEN smotra_histogram_compact(a || b) ELSE a || b END
$$;
"""


def threshold(limit: int):
    def apply(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(ADD.format(limit=limit))

    return apply


class Migration(migrations.Migration):
    dependencies = [("results", "0006_hour_rollup_bucket_index")]

    operations = [migrations.RunPython(threshold(512), threshold(240))]

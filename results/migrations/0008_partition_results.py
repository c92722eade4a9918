"""PostgreSQL: the raw results table becomes partitioned by day of its ids (results.partitions).

The table is rebuilt: renamed aside, recreated with the same columns, keys, constraint and index
names (later migrations find them as Django named them), its rows copied over, the old one dropped.
Partitions are made for every day of the retention and a week ahead, so the copy puts each
row where it belongs; keys and indexes are built after the copy (one pass each, not a check per
row). It holds an exclusive lock on the results for as long as the copy takes (about a minute per
few million rows): ingestion waits, agents resend. SQLite is unchanged. Reversible."""

from datetime import UTC, datetime, time, timedelta
from uuid import UUID

from django.conf import settings
from django.db import migrations

TABLE = "results_checkresult"
OLD = "results_checkresult_unpartitioned"
AHEAD_DAYS = 7  # as results.partitions (kept here: a migration does not follow later code)


def _floor(day) -> str:
    moment = datetime.combine(day, time(), tzinfo=UTC)
    return str(UUID(int=int(moment.timestamp() * 1000) << 80))


def _rebuild(cursor, *, partitioned: bool) -> None:
    cursor.execute(
        "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() AND tablename = %s",
        [TABLE],
    )
    indexes = cursor.fetchall()
    cursor.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = %s::regclass AND contype IN ('p', 'f') ORDER BY contype DESC",
        [TABLE],
    )
    keys = cursor.fetchall()  # the primary key first; CHECK constraints come with LIKE
    cursor.execute(f"ALTER TABLE {TABLE} RENAME TO {OLD}")
    for number, (name, _) in enumerate(indexes):  # index names are per schema: free them
        cursor.execute(f'ALTER INDEX "{name}" RENAME TO "{OLD}_{number}"')
    layout = " PARTITION BY RANGE (id)" if partitioned else ""
    cursor.execute(f"CREATE TABLE {TABLE} (LIKE {OLD} INCLUDING DEFAULTS INCLUDING CONSTRAINTS){layout}")
    primary, foreign = keys[0], keys[1:]
    cursor.execute(f'ALTER TABLE {TABLE} ADD CONSTRAINT "{primary[0]}" {primary[1]}')
    if partitioned:
        cursor.execute(f"CREATE TABLE {TABLE}_default PARTITION OF {TABLE} DEFAULT")
        today = datetime.now(UTC).date()
        day = today - timedelta(seconds=settings.SMOTRA.results.retention) - timedelta(days=1)
        while day <= today + timedelta(days=AHEAD_DAYS):
            cursor.execute(
                f"CREATE TABLE {TABLE}_p{day:%Y%m%d} PARTITION OF {TABLE} FOR VALUES FROM (%s) TO (%s)",
                [_floor(day), _floor(day + timedelta(days=1))],
            )
            day += timedelta(days=1)
    cursor.execute(f"INSERT INTO {TABLE} SELECT * FROM {OLD}")  # noqa: S608
    cursor.execute(f"DROP TABLE {OLD}")
    for name, definition in foreign:
        cursor.execute(f'ALTER TABLE {TABLE} ADD CONSTRAINT "{name}" {definition}')
    for name, definition in indexes:
        if name != primary[0]:
            cursor.execute(definition)  # "CREATE INDEX <name> ON <schema>.results_checkresult ..."


def partition(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        with schema_editor.connection.cursor() as cursor:
            _rebuild(cursor, partitioned=True)


def unpartition(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        with schema_editor.connection.cursor() as cursor:
            _rebuild(cursor, partitioned=False)


class Migration(migrations.Migration):
    dependencies = [("results", "0007_histogram_compaction_threshold")]

    operations = [migrations.RunPython(partition, unpartition)]

from django.apps import AppConfig
from django.db import DEFAULT_DB_ALIAS
from django.db.backends.signals import connection_created
from django.db.models.signals import post_migrate


def register_sqlite_functions(sender, connection, **kwargs):
    """SQLite gets in Python what PostgreSQL has in SQL (migration 0005): the rollups' histogram merge."""
    if connection.vendor == "sqlite":
        from results.histogram import histogram_merge

        connection.connection.create_function("smotra_histogram_add", 2, histogram_merge, deterministic=True)


def ensure_partitions(sender, using=DEFAULT_DB_ALIAS, **kwargs):
    """After every migrate: the coming days' result partitions (PostgreSQL; results.partitions)."""
    if using == DEFAULT_DB_ALIAS:
        from results.partitions import partitions_ensure

        partitions_ensure()


class ResultsConfig(AppConfig):
    name = "results"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        connection_created.connect(register_sqlite_functions, dispatch_uid="results.sqlite_functions")
        post_migrate.connect(ensure_partitions, sender=self, dispatch_uid="results.partitions")

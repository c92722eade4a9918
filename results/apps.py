from django.apps import AppConfig
from django.db.backends.signals import connection_created


def register_sqlite_functions(sender, connection, **kwargs):
    """SQLite gets in Python what PostgreSQL has in SQL (migration 0005): the rollups' histogram merge."""
    if connection.vendor == "sqlite":
        from results.histogram import histogram_merge

        connection.connection.create_function("smotra_histogram_add", 2, histogram_merge, deterministic=True)


class ResultsConfig(AppConfig):
    name = "results"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        connection_created.connect(register_sqlite_functions, dispatch_uid="results.sqlite_functions")

from django.apps import AppConfig


class SmotraConfig(AppConfig):
    name = "smotra"
    verbose_name = "Smotra"

    def ready(self):
        from smotra.api import schema  # noqa: F401 - registers the OpenAPI authentication extensions

from django.apps import AppConfig


class HealthchecksConfig(AppConfig):
    name = "healthchecks"
    default_auto_field = "django.db.models.BigAutoField"

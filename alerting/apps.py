from django.apps import AppConfig
from django.db.models.signals import post_save


class AlertingConfig(AppConfig):
    name = "alerting"
    verbose_name = "Alerting"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from alerting.admin import overview_incidents
        from alerting.builtin import on_tenant_saved
        from alerting.selectors import open_incident_count
        from smotra.hooks import register_open_alerts, register_overview_incidents

        post_save.connect(on_tenant_saved, sender="tenants.Tenant", dispatch_uid="alerting.builtin_rules")
        register_open_alerts(open_incident_count)
        register_overview_incidents(overview_incidents)

from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "kobatela.audit"
    label = "audit"
    verbose_name = "Audit"

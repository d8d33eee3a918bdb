from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "kobatela.audit"
    label = "audit"
    verbose_name = "Audit"

    def ready(self) -> None:
        from kobatela.audit.chain import lag
        from kobatela.audit.metrics import audit_seal_gauges
        from kobatela.core.health import register_detail_section
        from kobatela.core.metrics import register_collector
        from kobatela.core.roles import register_append_only

        for label in ("audit.AuditLog", "audit.AuditSeal", "audit.AuditCheckpoint"):
            register_append_only(label)
        register_detail_section("audit_seal", lag)
        register_collector("audit_seal", audit_seal_gauges)

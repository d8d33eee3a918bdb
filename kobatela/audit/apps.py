from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "kobatela.audit"
    label = "audit"
    verbose_name = "Audit"

    def ready(self) -> None:
        from kobatela.audit.chain import lag
        from kobatela.core.health import register_detail_section
        from kobatela.core.roles import register_append_only

        for label in ("audit.AuditLog", "audit.AuditSeal", "audit.AuditCheckpoint"):
            register_append_only(label)
        register_detail_section("audit_seal", lag)

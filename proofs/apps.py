from django.apps import AppConfig


class ProofsConfig(AppConfig):
    name = "proofs"
    verbose_name = "Proofs"

    def ready(self) -> None:
        from escrow.hooks import on_milestone_closed
        from kobatela.core.health import register_detail_section
        from kobatela.core.metrics import register_collector
        from kobatela.events.registry import register_resource
        from proofs.api import ProofReadSerializer, UploadLinkReadSerializer
        from proofs.health import ai_guard_gauges, proofs_health
        from proofs.metrics import proof_gauges
        from proofs.models import Proof, UploadLink
        from proofs.services import supersede_on_milestone_closed

        register_detail_section("proofs", proofs_health)
        register_resource(Proof, object_type="proof", serializer=ProofReadSerializer)
        register_resource(UploadLink, object_type="upload_link", serializer=UploadLinkReadSerializer)
        register_collector("proofs", proof_gauges)
        register_collector("ai_guard", ai_guard_gauges)
        # a milestone approved or resolved by any path: its pending proofs leave the review queue
        on_milestone_closed(supersede_on_milestone_closed)

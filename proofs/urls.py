from rest_framework.routers import SimpleRouter

from proofs.api import ProofViewSet

router = SimpleRouter(trailing_slash=False)
router.register("proofs", ProofViewSet, basename="proof")
urlpatterns = router.urls

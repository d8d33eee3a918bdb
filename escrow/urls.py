from rest_framework.routers import SimpleRouter

from escrow.api import EscrowViewSet, ProviderEscrowViewSet

router = SimpleRouter(trailing_slash=False)
router.register("escrows", EscrowViewSet, basename="escrow")
router.register("provider/escrows", ProviderEscrowViewSet, basename="provider-escrow")
urlpatterns = router.urls

from rest_framework.routers import SimpleRouter

from escrow.api import DisputeViewSet, EscrowViewSet, ProviderEscrowViewSet, RefundViewSet

router = SimpleRouter(trailing_slash=False)
router.register("escrows", EscrowViewSet, basename="escrow")
router.register("provider/escrows", ProviderEscrowViewSet, basename="provider-escrow")
router.register("disputes", DisputeViewSet, basename="dispute")
router.register("refunds", RefundViewSet, basename="refund")
urlpatterns = router.urls

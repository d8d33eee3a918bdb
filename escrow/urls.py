from rest_framework.routers import SimpleRouter

from escrow.api import EscrowViewSet

router = SimpleRouter(trailing_slash=False)
router.register("escrows", EscrowViewSet, basename="escrow")
urlpatterns = router.urls

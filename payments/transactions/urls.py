from rest_framework.routers import SimpleRouter

from payments.transactions.api import AllowlistViewSet, CertificationViewSet, TransactionViewSet

router = SimpleRouter(trailing_slash=False)
router.register("allowlist", AllowlistViewSet, basename="allowlist")
router.register("certified", CertificationViewSet, basename="certification")
router.register("transactions", TransactionViewSet, basename="transaction")
urlpatterns = router.urls

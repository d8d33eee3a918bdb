from rest_framework.routers import SimpleRouter

from spend import api

router = SimpleRouter(trailing_slash=False)
router.register("mandates", api.MandateViewSet, basename="mandate")
router.register("spend/purchases", api.PurchaseViewSet, basename="purchase")
router.register("spend/categories", api.CategoryViewSet, basename="spend-category")
router.register("spend/merchants", api.MerchantViewSet, basename="merchant")
router.register("spend/allowed", api.AllowedPayeeViewSet, basename="allowed-payee")
router.register("spend/allow", api.AllowedUsageViewSet, basename="allowed-usage")
router.register("spend", api.SpendViewSet, basename="spend")
router.register("kct_public/mandates", api.PublicMandateViewSet, basename="public-mandate")
urlpatterns = router.urls

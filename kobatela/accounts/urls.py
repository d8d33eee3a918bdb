from rest_framework.routers import SimpleRouter

from kobatela.accounts.api import ApiKeyViewSet, UserViewSet

router = SimpleRouter(trailing_slash=False)
router.register("users", UserViewSet, basename="user")
router.register("apikeys", ApiKeyViewSet, basename="apikey")
urlpatterns = router.urls

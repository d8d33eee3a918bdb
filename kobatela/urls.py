from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from kobatela import health_views

api_v1 = [
    path("", include("kobatela.accounts.urls")),
    path("", include("kobatela.audit.urls")),
    path("", include("escrow.urls")),
    path("", include("payments.urls")),
    path("", include("payments.transactions.urls")),
    path("", include("spend.urls")),
    path("", include("proofs.urls")),
    path("", include("webhooks.urls")),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
]

urlpatterns = [
    path("api/v1/", include(api_v1)),
    path("health/live", health_views.live, name="health-live"),
    path("health/ready", health_views.ready, name="health-ready"),
    path("health", health_views.HealthDetailView.as_view(), name="health"),
    path("metrics", health_views.metrics, name="metrics"),
    path(settings.ADMIN_URL_PATH, admin.site.urls),
]

handler400 = "kobatela.core.views.bad_request"
handler403 = "kobatela.core.views.permission_denied"
handler404 = "kobatela.core.views.page_not_found"
handler500 = "kobatela.core.views.server_error"

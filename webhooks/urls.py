from django.urls import path, re_path
from rest_framework.routers import SimpleRouter

from kobatela.core.viewsets import ID_PATTERN
from webhooks import sandbox_api
from webhooks.api import EventViewSet, PspWebhookView, StripeWebhookView, WebhookEndpointViewSet

router = SimpleRouter(trailing_slash=False)
router.register("events", EventViewSet, basename="event")
router.register("webhook-endpoints", WebhookEndpointViewSet, basename="webhook-endpoint")

urlpatterns = [
    path("psp/webhook", PspWebhookView.as_view(), name="psp-webhook"),
    path("psp/stripe/webhook", StripeWebhookView.as_view(), name="stripe-webhook"),
    re_path(rf"^sandbox/payments/(?P<id>{ID_PATTERN})/settle$", sandbox_api.SandboxPaymentSettleView.as_view(), name="sandbox-settle"),
    re_path(rf"^sandbox/payments/(?P<id>{ID_PATTERN})/fail$", sandbox_api.SandboxPaymentFailView.as_view(), name="sandbox-fail"),
    re_path(rf"^sandbox/escrows/(?P<id>{ID_PATTERN})/fund$", sandbox_api.SandboxEscrowFundView.as_view(), name="sandbox-fund"),
    path("sandbox/clock/advance", sandbox_api.SandboxClockAdvanceView.as_view(), name="sandbox-clock-advance"),
    *router.urls,
]

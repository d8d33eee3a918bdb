from django.urls import path
from rest_framework.routers import SimpleRouter

from webhooks.api import EventViewSet, PspWebhookView, StripeWebhookView, WebhookEndpointViewSet

router = SimpleRouter(trailing_slash=False)
router.register("events", EventViewSet, basename="event")
router.register("webhook-endpoints", WebhookEndpointViewSet, basename="webhook-endpoint")

urlpatterns = [
    path("psp/webhook", PspWebhookView.as_view(), name="psp-webhook"),
    path("psp/stripe/webhook", StripeWebhookView.as_view(), name="stripe-webhook"),
    *router.urls,
]

from django.urls import path

from webhooks.api import PspWebhookView, StripeWebhookView

urlpatterns = [
    path("psp/webhook", PspWebhookView.as_view(), name="psp-webhook"),
    path("psp/stripe/webhook", StripeWebhookView.as_view(), name="stripe-webhook"),
]

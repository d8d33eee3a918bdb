"""Outbound webhooks: integrators' endpoints (``endpoints``) and delivering events to them (``delivery``)."""

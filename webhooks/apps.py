from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "webhooks"
    verbose_name = "Webhooks"

    def ready(self) -> None:
        from kobatela.core.health import register_detail_section
        from kobatela.core.metrics import register_collector
        from kobatela.events.registry import add_listener
        from webhooks import checks  # noqa: F401  (registers the system check)
        from webhooks.health import psp_health
        from webhooks.metrics import webhook_gauges
        from webhooks.outbound.delivery import deliveries_create_for_event

        add_listener(deliveries_create_for_event)
        register_detail_section("psp", psp_health)
        register_collector("webhooks", webhook_gauges)

from django.apps import AppConfig


class EventsConfig(AppConfig):
    name = "kobatela.events"
    label = "events"
    verbose_name = "Events"

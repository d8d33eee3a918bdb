from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "kobatela.accounts"
    label = "accounts"
    verbose_name = "Accounts"

    def ready(self) -> None:
        from kobatela.accounts import openapi  # noqa: F401  (registers the schema extensions)

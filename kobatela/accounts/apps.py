from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "kobatela.accounts"
    label = "accounts"
    verbose_name = "Accounts"

from django.db.models import QuerySet

from kobatela.accounts.models import ApiKey, User


def user_list() -> QuerySet[User]:
    return User.objects.all()


def api_key_list() -> QuerySet[ApiKey]:
    return ApiKey.objects.all()


def payee_for_psp_account(account: str) -> User | None:
    """The account paid at this PSP reference: its ``payout_account``, or ``user:<id>``
    (``User.payout_destination`` when no payout account is set)."""
    user = User.objects.filter(payout_account=account).exclude(payout_account="").first()
    if user is None and account.startswith("user:") and account[5:].isdigit() and len(account) < 25:
        user = User.objects.filter(pk=int(account[5:]), payout_account="").first()
    return user

from django.db.models import QuerySet

from kobatela.accounts.models import ApiKey, User


def user_list() -> QuerySet[User]:
    return User.objects.all()


def api_key_list() -> QuerySet[ApiKey]:
    return ApiKey.objects.all()

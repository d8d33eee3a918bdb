from django.db.models import QuerySet

from kobatela.audit.models import Alert


def alert_list() -> QuerySet[Alert]:
    return Alert.objects.all()

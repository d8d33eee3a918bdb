from rest_framework import mixins, serializers

from kobatela.audit import selectors
from kobatela.audit.models import Alert
from kobatela.core.scopes import Scope
from kobatela.core.viewsets import ScopedViewSet


class AlertSerializer(serializers.ModelSerializer):
    data = serializers.DictField(read_only=True, help_text="What the alert is about (ids, amounts…).")

    class Meta:
        model = Alert
        fields = ["id", "type", "severity", "status", "message", "data", "created_at", "acknowledged_at", "resolved_at"]
        read_only_fields = fields


class AlertFilterSerializer(serializers.Serializer):
    type = serializers.CharField(max_length=64, required=False, help_text="Only alerts of this type.")
    status = serializers.ChoiceField(choices=Alert.Status.choices, required=False)


class AlertViewSet(mixins.ListModelMixin, ScopedViewSet):
    required_scopes = {Scope.ADMIN, Scope.SUPPORT}
    serializer_class = AlertSerializer
    list_filter_serializer = AlertFilterSerializer

    def scoped_queryset(self, actor):
        return selectors.alert_list()

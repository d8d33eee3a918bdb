from __future__ import annotations

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.response import Response

from kobatela.accounts import selectors, services
from kobatela.accounts.models import ApiKey, PayoutStatus, User
from kobatela.core.scopes import Scope
from kobatela.core.viewsets import ScopedViewSet


class UserSerializer(serializers.ModelSerializer):
    class Meta:
        model = User
        fields = ["id", "email", "full_name", "kind", "payout_status", "created_at"]
        read_only_fields = ["id", "payout_status", "created_at"]
        # Uniqueness is decided by the database (409 email_taken), not by a racy pre-check.
        # ``kind`` is part of the contract's body (API.md): required, not the model's default.
        extra_kwargs = {"email": {"validators": []}, "full_name": {"allow_blank": False}, "kind": {"required": True}}


class TextField(serializers.CharField):
    """A JSON string only: DRF's CharField would also take 0 or true as "0" or "True"."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class PayoutStatusUpdateSerializer(serializers.Serializer):
    # A PATCH: what is absent is left as it is ({} changes nothing).
    payout_status = serializers.ChoiceField(choices=PayoutStatus.choices, required=False)
    reason = TextField(max_length=500, required=False, allow_blank=True, default="",
                       help_text="Why (kept in the audit log).")


class UserViewSet(mixins.CreateModelMixin, mixins.RetrieveModelMixin, ScopedViewSet):
    required_scopes = {Scope.ADMIN, Scope.SUPPORT}
    serializer_class = UserSerializer

    def scoped_queryset(self, actor):
        return selectors.user_list()

    def perform_create(self, serializer):
        serializer.instance = services.user_create(actor=self.actor, **serializer.validated_data)

    @extend_schema(request=PayoutStatusUpdateSerializer, responses={200: UserSerializer})
    def partial_update(self, request, pk=None):
        """Set the account's payout_status (payee verification): verifying releases its waiting payouts."""
        data = self.validated(PayoutStatusUpdateSerializer)
        user = self.get_object()
        if "payout_status" in data:
            user = services.user_set_payout_status(actor=self.actor, user_id=user.pk, **data)
        return Response(UserSerializer(user).data)


class ApiKeyReadSerializer(serializers.ModelSerializer):
    user_id = serializers.IntegerField(read_only=True)
    scopes = serializers.ListField(child=serializers.ChoiceField(choices=Scope.choices), read_only=True)

    class Meta:
        model = ApiKey
        fields = ["id", "name", "prefix", "user_id", "scopes", "created_at", "expires_at", "revoked_at", "last_used_at"]
        read_only_fields = fields


class ApiKeyCreatedSerializer(ApiKeyReadSerializer):
    key = serializers.CharField(read_only=True, help_text="The plaintext key: shown this once only.")

    class Meta(ApiKeyReadSerializer.Meta):
        fields = ["id", "name", "prefix", "scopes", "key", "created_at", "expires_at"]
        read_only_fields = fields


class ApiKeyCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    user_id = serializers.PrimaryKeyRelatedField(queryset=User.objects.filter(is_active=True), source="user")
    scopes = serializers.ListField(child=serializers.ChoiceField(choices=Scope.choices), min_length=1, max_length=len(Scope.choices))
    expires_at = serializers.DateTimeField(required=False, allow_null=True)

    def validate_expires_at(self, value):
        if value is not None and value <= timezone.now():
            raise serializers.ValidationError("Must be in the future.")
        return value


class ApiKeyViewSet(mixins.RetrieveModelMixin, ScopedViewSet):
    required_scopes = {"create": {Scope.ADMIN}, "retrieve": {Scope.ADMIN}, "destroy": {Scope.ADMIN}}
    serializer_class = ApiKeyReadSerializer

    def scoped_queryset(self, actor):
        return selectors.api_key_list()

    @extend_schema(request=ApiKeyCreateSerializer, responses={201: ApiKeyCreatedSerializer})
    def create(self, request):
        serializer = self.validated(ApiKeyCreateSerializer)
        api_key, plaintext = services.api_key_create(actor=self.actor, **serializer)
        api_key.key = plaintext
        return Response(ApiKeyCreatedSerializer(api_key).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={204: None})
    def destroy(self, request, pk=None):
        services.api_key_revoke(actor=self.actor, api_key_id=self.get_object().pk)
        return Response(status=status.HTTP_204_NO_CONTENT)

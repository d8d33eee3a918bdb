"""OpenAPI (drf-spectacular): auth schemes, the error shape and Idempotency-Key on every operation."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers

from kobatela.accounts.permissions import required_scopes_for


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Stable snake_case code, e.g. `validation_error`.")
    message = serializers.CharField()
    details = serializers.JSONField(allow_null=True, help_text="Per-field messages for validation errors.")
    request_id = serializers.CharField(help_text="Same value as the X-Request-ID response header.")


class ErrorSerializer(serializers.Serializer):
    error = ErrorDetailSerializer()


ERROR_DESCRIPTIONS = {
    "400": "Invalid input (validation_error, malformed_json, idempotency_key_required…).",
    "401": "No, invalid, revoked or expired API key.",
    "403": "The API key lacks the scope.",
    "404": "Not found, or not yours.",
    "409": "Conflicts with the current state (or idempotency_request_in_progress).",
    "413": "Body too large.",
    "422": "idempotency_key_reused, or refused by a rule.",
}


class AutoSchema(SpectacularAutoSchema):
    def _idempotency_required(self) -> bool:
        action = getattr(self.view, "action", None)
        return action in getattr(self.view, "idempotency_required_actions", ())

    def get_override_parameters(self):
        params = list(super().get_override_parameters())
        if self.method == "POST":
            required = self._idempotency_required()
            params.append(
                OpenApiParameter(
                    "Idempotency-Key",
                    OpenApiTypes.STR,
                    OpenApiParameter.HEADER,
                    required=required,
                    description=(
                        "1–255 characters, scoped to the API key, kept 24 h. The same key with the same request "
                        "replays the stored response (header `Idempotent-Replayed: true`)."
                        + (" **Required** on this endpoint." if required else " Optional on this endpoint.")
                    ),
                )
            )
        return params

    def get_description(self):
        description = super().get_description() or ""
        scopes = sorted(required_scopes_for(self.view))
        if scopes:
            description += f"\n\nScopes: {', '.join(f'`{s}`' for s in scopes)}."
        return description.strip()

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        if direction != "response" or not self.get_auth():
            return responses
        codes = ["401", "403"]
        if self.method in ("POST", "PUT", "PATCH"):
            codes += ["400", "413"]
        if "{" in self.path:
            codes.append("404")
        if self.method == "POST":
            codes += ["409", "422"]
        for code in codes:
            if code not in responses:
                response = self._get_response_for_code(ErrorSerializer, code, direction=direction)
                response["description"] = ERROR_DESCRIPTIONS[code]
                responses[code] = response
        return responses


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "kobatela.accounts.authentication.ApiKeyAuthentication"
    name = ["BearerApiKey", "HeaderApiKey"]

    def get_security_requirement(self, auto_schema):
        return [{"BearerApiKey": []}, {"HeaderApiKey": []}]

    def get_security_definition(self, auto_schema):
        return [
            {"type": "http", "scheme": "bearer", "description": "Authorization: Bearer kbt_…"},
            {"type": "apiKey", "in": "header", "name": "X-API-Key"},
        ]

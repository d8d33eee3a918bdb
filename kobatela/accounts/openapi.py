"""OpenAPI (drf-spectacular): auth schemes, the error shape, Idempotency-Key on
every POST, list filters as query parameters, the money fields' real formats,
and the error answers every operation can give."""

from __future__ import annotations

from functools import cache

from django.conf import settings
from drf_spectacular.extensions import (
    OpenApiAuthenticationExtension,
    OpenApiSerializerFieldExtension,
)
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.utils import OpenApiParameter
from rest_framework import exceptions, serializers

from kobatela.accounts.permissions import required_scopes_for
from kobatela.core.errors import DomainError
from kobatela.core.idempotency import HEADER as IDEMPOTENCY_HEADER
from kobatela.core.idempotency import MAX_KEY_LENGTH as IDEMPOTENCY_KEY_MAX_LENGTH


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Stable snake_case code, e.g. `validation_error`.")
    message = serializers.CharField()
    details = serializers.JSONField(allow_null=True, help_text="Per-field messages for validation errors.")
    request_id = serializers.CharField(help_text="Same value as the X-Request-ID response header.")


class ErrorSerializer(serializers.Serializer):
    error = ErrorDetailSerializer()


def _subclasses(root: type) -> list[type]:
    """``root`` and every class below it, parents first, in a stable order."""
    found, pending = [], [root]
    while pending:
        error = pending.pop(0)
        found.append(error)
        pending.extend(sorted(error.__subclasses__(), key=lambda sub: (sub.__module__, sub.__qualname__)))
    return found


@cache
def error_descriptions() -> dict[int, str]:
    """Each status's description, from the errors the one exception handler
    renders: what kobatela.core.errors says by default (else the first app
    error, else DRF's own exception), and the default codes of every class,
    the apps' subclasses included (all imported once the URLs are, before any
    schema is generated: computed once, for every operation)."""
    messages: dict[int, list[str]] = {}
    codes: dict[int, list[str]] = {}

    def add(bucket: dict[int, list[str]], status: int, value: str) -> None:
        if value not in bucket.setdefault(status, []):
            bucket[status].append(value)

    for error in _subclasses(DomainError):
        add(codes, error.status, error.default_code)
        if error.__module__ == DomainError.__module__ or error.status not in messages:
            add(messages, error.status, error.default_message)
    for error in _subclasses(exceptions.APIException)[1:]:
        if issubclass(error, exceptions.ValidationError):
            continue  # rendered as ``validation_error``, a DomainError code too
        add(codes, error.status_code, error.default_code)
        if error.status_code not in messages:
            add(messages, error.status_code, str(error.default_detail))
    return {status: " ".join([*messages.get(status, ()), "Codes:", ", ".join(f"`{c}`" for c in codes[status]), "…"])
            for status in codes}


class AutoSchema(SpectacularAutoSchema):
    """Adds what every view of this API shares, so that no view repeats it."""

    def _idempotency_required(self) -> bool:
        action = getattr(self.view, "action", None)
        return action in getattr(self.view, "idempotency_required_actions", ())

    def get_override_parameters(self):
        params = list(super().get_override_parameters())
        filters = getattr(self.view, "list_filter_serializer", None)
        if filters is not None and getattr(self.view, "action", None) == "list":
            params.insert(0, filters)  # the view's own declarations, after it, win
        if self.method == "POST":
            required = self._idempotency_required()
            params.append(
                OpenApiParameter(
                    IDEMPOTENCY_HEADER,
                    {"type": "string", "minLength": 1, "maxLength": IDEMPOTENCY_KEY_MAX_LENGTH},
                    OpenApiParameter.HEADER,
                    required=required,
                    description=(
                        f"1–{IDEMPOTENCY_KEY_MAX_LENGTH} characters, scoped to the API key, kept 24 h. The same key "
                        "with the same request replays the stored response (header `Idempotent-Replayed: true`)."
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

    def _map_serializer_field(self, field, direction, bypass_extensions=False):
        schema = super()._map_serializer_field(field, direction, bypass_extensions)
        # drf-spectacular leaves out the length limits of a nested ``many=True``
        # serializer (``milestones``), which the API enforces.
        if isinstance(field, serializers.ListSerializer) and schema and schema.get("type") == "array":
            if field.min_length is not None or not field.allow_empty:
                schema["minItems"] = max(field.min_length or 0, 0 if field.allow_empty else 1)
            if field.max_length is not None:
                schema["maxItems"] = field.max_length
        return schema

    def get_operation(self, path, path_regex, path_prefix, method, registry):
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        if operation is None:
            return None
        responses = operation.setdefault("responses", {})
        descriptions = error_descriptions()
        for status in sorted(self._error_statuses(operation)):
            if str(status) not in responses:
                responses[str(status)] = self._get_response_for_code(ErrorSerializer, str(status), direction="response")
        for status, response in responses.items():
            # Also the error answers a view declares itself (``{502: ErrorSerializer}``).
            if not response.get("description") and status.isdigit() and int(status) in descriptions:
                response["description"] = descriptions[int(status)]
        return operation

    def _error_statuses(self, operation: dict) -> set[int]:
        """The error statuses this operation can answer, from what the
        framework does for every view (a view documents its own others)."""
        in_query = any(p["in"] == "query" for p in operation.get("parameters", ()))
        has_body = "requestBody" in operation
        # An Accept header that rules out JSON (DRF's content negotiation); the
        # database or cache briefly unreachable (kobatela.core.outages).
        statuses = {406, 503}
        if operation.get("security"):
            statuses |= {401, 403}  # no valid key; a key without the scope
        if has_body or in_query or self.method == "POST":
            statuses.add(400)  # invalid field or parameter, malformed JSON, a bad Idempotency-Key
        if has_body:
            statuses |= {413, 415}  # body too large; a content type the view does not parse
        if "{" in self.path or (has_body and self._body_names_other_objects()):
            statuses.add(404)  # another tenant's object is not found either
        if self.method == "POST" and operation.get("security"):
            # State conflicts, and a key's idempotency (API keys only): 409
            # idempotency_request_in_progress, 422 idempotency_key_reused.
            statuses |= {409, 422}
        return statuses

    def _body_names_other_objects(self) -> bool:
        """The body refers to objects by id (``*_id``, ``*_ids``): one that does
        not exist, or is not the caller's, is a 404."""
        serializer = self.get_request_serializer()
        if isinstance(serializer, dict):  # {media type: serializer}
            serializer = next(iter(serializer.values()), None)
        if isinstance(serializer, type):
            serializer = serializer()
        fields = getattr(serializer, "fields", {})
        return any(name.endswith(("_id", "_ids")) for name in fields)


class AmountFieldExtension(OpenApiSerializerFieldExtension):
    """``AmountField`` as the API reads it: a positive decimal string (or
    zero where allowed) with at most 16 integer digits and 2 decimals, or
    the same as a JSON number. drf-spectacular's decimal pattern also lets
    through ``""``, ``"-5"`` and ``"0"``, which the field refuses."""

    target_class = "kobatela.core.money.AmountField"

    def map_serializer_field(self, auto_schema, direction):
        allows_zero = not self.target.min_value
        digits = r"(?:0|[1-9][0-9]{0,15})(?:\.[0-9]{1,2})?" if allows_zero else (
            r"(?:[1-9][0-9]{0,15}(?:\.[0-9]{1,2})?|0\.(?:[1-9][0-9]?|0[1-9]))")
        as_string = {"type": "string", "format": "decimal", "pattern": f"^{digits}$", "example": "1250.00"}
        if direction == "response":
            return as_string
        as_number = {"type": "number", "multipleOf": 0.01, "minimum": 0, "exclusiveMinimum": not allows_zero,
                     "maximum": 10**16, "exclusiveMaximum": True}
        return {"oneOf": [as_string, as_number]}


class CurrencyFieldExtension(OpenApiSerializerFieldExtension):
    """``CurrencyField``: one of the configured currencies (``ALLOWED_CURRENCIES``), any case."""

    target_class = "kobatela.core.money.CurrencyField"

    def map_serializer_field(self, auto_schema, direction):
        return {"type": "string", "enum": list(settings.ALLOWED_CURRENCIES)}


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

"""OpenAPI (drf-spectacular): auth schemes, the error shape, Idempotency-Key on
every POST, list filters as query parameters, the money fields' real formats,
and the error answers every operation can give."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.extensions import (
    OpenApiAuthenticationExtension,
    OpenApiSerializerFieldExtension,
)
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers

from kobatela.accounts import error_codes
from kobatela.accounts.contract import contract_entry
from kobatela.accounts.permissions import required_scopes_for
from kobatela.core.idempotency import HEADER as IDEMPOTENCY_HEADER
from kobatela.core.idempotency import MAX_KEY_LENGTH as IDEMPOTENCY_KEY_MAX_LENGTH


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Stable snake_case code, e.g. `validation_error`.")
    message = serializers.CharField()
    details = serializers.DictField(allow_null=True, help_text="Per-field messages for validation errors.")
    request_id = serializers.CharField(help_text="Same value as the X-Request-ID response header.")


class ErrorSerializer(serializers.Serializer):
    error = ErrorDetailSerializer()


RATE_LIMIT_HEADERS = {
    "RateLimit-Limit": {"schema": {"type": "integer"}, "description": "Requests allowed in the binding window."},
    "RateLimit-Remaining": {"schema": {"type": "integer", "minimum": 0},
                            "description": "Requests left in that window."},
    "RateLimit-Reset": {"schema": {"type": "integer", "minimum": 1},
                        "description": "Seconds until that window resets."},
}
_STATUS_MEANING = {400: "Invalid input", 401: "No valid API key (or signature)", 403: "The key lacks the scope",
                   404: "Not found (or another tenant's)", 406: "Not acceptable", 409: "Conflicts with the state",
                   413: "Body too large", 415: "Unsupported media type", 422: "Refused by a rule",
                   429: "Over the rate limit", 502: "The payment provider refused",
                   503: "Briefly unavailable; retry"}


def _error_schema(code_schema: dict) -> dict:
    """The contract's error shape with this operation's codes for one status."""
    return {"type": "object", "required": ["error"], "properties": {"error": {
        "type": "object", "required": ["code", "message", "details", "request_id"],
        "properties": {
            "code": code_schema,
            "message": {"type": "string"},
            "details": {"type": "object", "nullable": True, "additionalProperties": True,
                        "description": "Per-field messages for validation errors; context for others."},
            "request_id": {"type": "string", "description": "Same value as the X-Request-ID response header."},
        }}}}


_SUCCESS = {"200": "OK", "201": "Created", "202": "Accepted", "204": "No content"}


def _success_description(status: str, response: dict) -> str:
    """``Created: EscrowRead.``: what a success answers, named after its component."""
    schema = next(iter(response.get("content", {}).values()), {}).get("schema", {})
    ref = schema.get("$ref") or schema.get("items", {}).get("$ref")
    what = ref.rsplit("/", 1)[1] if ref else ("a file" if schema.get("format") == "binary" else "")
    return f"{_SUCCESS.get(status, 'Success')}{': ' + what if what else ''}."


def _error_description(status: int, codes) -> str:
    listed = [f"`{c}`" for c in sorted(codes.enum.get(status, ()))]
    listed += [f"`{p.replace('[a-z0-9_]+', '<…>')}`" for p in sorted(codes.patterns.get(status, ()))]
    return f"{_STATUS_MEANING.get(status, 'Error')}. Codes: {', '.join(listed)}."


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

    def get_summary(self):
        entry = contract_entry(self.method, self.path)
        return (entry.summary if entry else None) or super().get_summary()

    def get_description(self):
        """The operation's section of docs/api.md (the contract in the repository), then its scopes."""
        entry = contract_entry(self.method, self.path)
        description = entry.description if entry and entry.description else (super().get_description() or "")
        scopes = sorted(required_scopes_for(self.view))
        if scopes:
            description += f"\n\nScopes: {', '.join(f'`{s}`' for s in scopes)}."
        return description.strip()

    def _map_serializer_field(self, field, direction, bypass_extensions=False):
        schema = super()._map_serializer_field(field, direction, bypass_extensions)
        if direction == "response" and schema:
            schema = _money_or_currency(field, schema)
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
        codes = self._error_codes(operation)
        declared = {int(status) for status in responses if status.isdigit() and int(status) >= 400}
        for status in sorted(self._error_statuses(operation) | codes.statuses() | declared):
            if not codes.enum.get(status) and not codes.patterns.get(status):
                codes.add(status, error_codes.fallback_code(status) or "error")
            # A view that answers this status with a page for a person (the upload link's "this
            # link is closed", text/html) keeps its declared content; every other error is JSON.
            pages = {media: body for media, body in responses.get(str(status), {}).get("content", {}).items()
                     if "json" not in media}
            responses[str(status)] = {
                "description": _error_description(status, codes),
                "content": pages or {"application/json": {"schema": _error_schema(codes.code_schema(status))}},
            }
        for status, response in responses.items():
            if status.startswith("2") and not response.get("description"):
                response["description"] = _success_description(status, response)
        if operation.get("security"):
            for status, response in responses.items():
                response.setdefault("headers", {}).update(RATE_LIMIT_HEADERS)
                if status == "429":
                    response["headers"]["Retry-After"] = {"schema": {"type": "integer", "minimum": 1},
                                                          "description": "Seconds to wait before retrying."}
        return operation

    def _handlers(self) -> list:
        """The functions that answer this operation: the action, or the method handler."""
        view_class = type(self.view)
        sources = getattr(view_class, "error_sources", None)
        if sources is not None:
            return list(sources)
        name = getattr(self.view, "action", None) or self.method.lower()
        # DRF's generic actions (list, create…) call the view's own hooks.
        hooks = {"create": ["perform_create"], "update": ["perform_update"], "partial_update": ["perform_update"],
                 "destroy": ["perform_destroy"]}.get(name, [])
        names = [name, *hooks, "scoped_queryset", "get_object"]
        return [getattr(view_class, n) for n in names if getattr(view_class, n, None) is not None]

    def _error_codes(self, operation: dict) -> error_codes.Codes:
        """The codes this operation can answer, by status: the framework's, and what its handler reaches."""
        shared = error_codes.framework_codes()
        codes = error_codes.Codes()
        codes.merge(shared["always"])
        if operation.get("security"):
            codes.merge(shared["keyed"])
        if "requestBody" in operation:
            codes.merge(shared["body"])
        if self.method == "POST":
            # Every POST goes through the idempotency unit and checks its header (400);
            # only an API key's requests are stored and replayed (409, 422).
            post = shared["post"]
            codes.merge(post if operation.get("security") else
                        error_codes.Codes(enum={400: post.enum.get(400, set())}, patterns={400: set()}))
        if any(p["in"] == "query" for p in operation.get("parameters", ())):
            codes.merge(shared["query"])
        if "{" in self.path:
            codes.add(404, "not_found")
        codes.merge(error_codes.codes_of(self._handlers(), owner=type(self.view)))
        declared = getattr(self.view, "raises", ())
        if isinstance(declared, dict):
            declared = declared.get(getattr(self.view, "action", None), ())
        codes.merge(error_codes.declared(declared))
        return codes

    def _error_statuses(self, operation: dict) -> set[int]:
        """The error statuses this operation can answer, from what the
        framework does for every view (the handler's own are found by reading it)."""
        in_query = any(p["in"] == "query" for p in operation.get("parameters", ()))
        has_body = "requestBody" in operation
        # An Accept header that rules out JSON (DRF's content negotiation); the
        # database or cache briefly unreachable (kobatela.core.outages).
        statuses = {406, 503}
        if operation.get("security"):
            statuses |= {401, 403, 429}  # no valid key; a key without the scope; over the rate limit
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


MONEY_OUT_PATTERN = r"^(?:0|[1-9][0-9]{0,15})\.[0-9]{2}$"


def _money_or_currency(field, schema: dict) -> dict:
    """Amounts leave as non-negative strings with two decimals (``DecimalField(18, 2)``
    is money everywhere in this API); ``currency`` is one of the configured ones."""
    if (isinstance(field, serializers.DecimalField) and field.decimal_places == 2 and field.max_digits == 18
            and schema.get("type") == "string"):
        return {**schema, "format": "decimal", "pattern": MONEY_OUT_PATTERN, "example": "1250.00"}
    if field.field_name == "currency" and isinstance(field, serializers.CharField) and schema.get("type") == "string":
        return {**schema, "enum": list(settings.ALLOWED_CURRENCIES)}
    return schema


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


def _error_response(status: int, codes: list[str], meaning: str) -> dict:
    return {"description": f"{meaning}. Codes: {', '.join(f'`{c}`' for c in codes)}.",
            "content": {"application/json": {"schema": _error_schema({"type": "string", "enum": codes})}}}


_CHECK = {"type": "string", "description": "`ok`, or what failed (never a secret or a version)."}
_READY = {"type": "object", "required": ["status", "checks"], "properties": {
    "status": {"type": "string", "enum": ["ok", "fail"]},
    "checks": {"type": "object", "additionalProperties": _CHECK,
               "properties": {name: _CHECK for name in ("database", "migrations", "cache", "broker", "storage")}}}}


def add_operator_endpoints(result, generator, request, public):
    """drf-spectacular post-processing hook: the operators' plain Django views
    (``/health/live``, ``/health/ready``, ``/metrics``) described beside the
    API, each from its section of docs/api.md, and the contract named."""
    def operation(method: str, path: str, operation_id: str, responses: dict, **extra) -> dict:
        entry = contract_entry(method, path)
        return {"operationId": operation_id, "summary": entry.summary if entry else operation_id,
                "description": entry.description if entry else "", "tags": ["health"], "security": [{}],
                "responses": responses, **extra}

    not_allowed = _error_response(405, ["method_not_allowed"], "Only GET")
    paths = result.setdefault("paths", {})
    paths["/health/live"] = {"get": operation("GET", "/health/live", "health_live", {
        "200": {"description": "The process serves.", "content": {"application/json": {"schema": {
            "type": "object", "required": ["status"], "properties": {"status": {"type": "string", "enum": ["ok"]}}}}}},
        "405": not_allowed})}
    paths["/health/ready"] = {"get": operation("GET", "/health/ready", "health_ready", {
        "200": {"description": "Ready: every check is `ok`.", "content": {"application/json": {"schema": _READY}}},
        "503": {"description": "Not ready: at least one check failed.",
                "content": {"application/json": {"schema": _READY}}},
        "405": not_allowed})}
    paths["/metrics"] = {"get": operation("GET", "/metrics", "metrics", {
        "200": {"description": "Prometheus text exposition format.",
                "content": {"text/plain": {"schema": {"type": "string"}}}},
        "403": _error_response(403, ["metrics_forbidden"], "Not a loopback client, or not the METRICS_TOKEN"),
    }, parameters=[{"name": "Authorization", "in": "header", "required": False, "schema": {"type": "string"},
                    "description": "`Bearer <METRICS_TOKEN>` when METRICS_TOKEN is set."}])}
    return result

"""The contract in the repository (docs/api.md), the served schema and the URLconf agree.

- every endpoint the URLconf routes (API views, the operators' views) is an
  operation of the served schema;
- every operation of the schema has its section in docs/api.md, with a
  summary and a description, and every section names a real operation;
- every error ``code`` the schema says an operation can answer is listed in
  docs/api.md ("Errors").

Adding an endpoint is one step more than writing it: its ``### `METHOD /path` — Summary``
section in docs/api.md (the schema's texts come from there).
"""

from __future__ import annotations

import re

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from drf_spectacular.generators import EndpointEnumerator
from rest_framework.test import APIClient

from kobatela.accounts.contract import contract_entries, contract_path

# Routed but not operations of the API: the schema and its browser, the admin site, static files.
NOT_OPERATIONS = re.compile(r"^/(?:api/v1/(?:schema|docs)/|admin|static|media)")
METHODS = ("get", "post", "put", "patch", "delete")


@pytest.fixture(scope="module")
def schema(django_db_blocker):
    with django_db_blocker.unblock():
        response = APIClient().get("/api/v1/schema/", {"format": "json"})
    assert response.status_code == 200
    return response.json()


def _schema_operations(schema) -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, item in schema["paths"].items() for method in item if method in METHODS}


def _plain_django_routes() -> set[str]:
    """The routes whose view is not a DRF view (the operators' endpoints), as paths."""
    found = set()

    def walk(patterns, prefix=""):
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, route)
            elif isinstance(pattern, URLPattern) and not hasattr(pattern.callback, "cls"):
                path = "/" + route.lstrip("^").rstrip("$")
                if not NOT_OPERATIONS.match(path):
                    found.add(path)

    walk(get_resolver().url_patterns)
    return found


def test_every_routed_endpoint_is_in_the_schema(schema):
    operations = _schema_operations(schema)
    routed = {(method, re.sub(r"\{pk\}", "{id}", path)) for path, _, method, _ in EndpointEnumerator().get_api_endpoints()
              if not NOT_OPERATIONS.match(path) and method != "OPTIONS"}
    assert routed, "no endpoint found"
    assert routed - operations == set(), "routed but missing from the schema"
    plain = _plain_django_routes()
    assert plain == {"/health/live", "/health/ready", "/metrics"}, plain
    assert {path for _, path in operations} >= plain


def test_every_operation_has_its_section_in_docs_api_md(schema):
    entries = contract_entries()
    missing = sorted(_schema_operations(schema) - set(entries))
    assert missing == [], f"add a section to {contract_path()} for: {missing}"
    for (method, path), item in ((k, schema["paths"][k[1]][k[0].lower()]) for k in _schema_operations(schema)):
        assert item.get("summary") and item.get("description"), (method, path)
        assert item["summary"] == entries[(method, path)].summary


def test_every_section_of_docs_api_md_is_an_operation(schema):
    stale = sorted(set(contract_entries()) - _schema_operations(schema))
    assert stale == [], f"sections of docs/api.md without an operation: {stale}"


def test_every_error_code_is_listed_in_docs_api_md(schema):
    text = contract_path().read_text(encoding="utf-8")
    codes, patterns = set(), set()
    for item in schema["paths"].values():
        for method, operation in item.items():
            if method not in METHODS:
                continue
            for status, response in operation["responses"].items():
                body = response.get("content", {}).get("application/json", {}).get("schema", {})
                code = body.get("properties", {}).get("error", {}).get("properties", {}).get("code")
                if not code:
                    continue
                for variant in [code, *code.get("anyOf", [])]:
                    codes.update(variant.get("enum", ()))
                    if "pattern" in variant:
                        patterns.add(variant["pattern"])
    assert codes
    unlisted = sorted(code for code in codes if f"`{code}`" not in text)
    assert unlisted == [], f"codes missing from docs/api.md (Errors): {unlisted}"
    if patterns:
        assert "`<object>_is_<status>`" in text


def test_the_readme_and_the_schema_link_to_the_contract_in_the_repository(schema):
    from django.conf import settings

    readme = (settings.BASE_DIR / "README.md").read_text(encoding="utf-8")
    assert "docs/api.md" in readme and "docs/quickstart.md" in readme
    assert "../shared" not in readme
    for page in (settings.BASE_DIR / "docs").glob("*.md"):
        assert "../shared" not in page.read_text(encoding="utf-8"), page
    assert "docs/api.md" in schema["info"]["description"]


def _codes(schema, method: str, path: str, status: str) -> set[str]:
    code = (schema["paths"][path][method]["responses"][status]["content"]["application/json"]["schema"]
            ["properties"]["error"]["properties"]["code"])
    found = set(code.get("enum", ()))
    for variant in code.get("anyOf", ()):
        found |= set(variant.get("enum", ()))
        if "pattern" in variant:
            found.add(variant["pattern"])
    return found


def test_each_operation_lists_the_codes_its_code_raises(schema):
    """Read from the code (kobatela/accounts/error_codes.py), not written twice."""
    assert "provider_not_found" in _codes(schema, "post", "/api/v1/escrows", "404")
    assert "milestones_total_mismatch" in _codes(schema, "post", "/api/v1/escrows", "400")
    deposit = _codes(schema, "post", "/api/v1/escrows/{id}/deposit", "409")
    assert {"deposit_exceeds_remaining", "idempotency_request_in_progress"} <= deposit
    assert any("escrow_is_" in code for code in deposit)  # the <object>_is_<status> family, as a pattern
    assert {"outside_geofence", "photo_too_old", "duplicate_proof"} <= (
        _codes(schema, "post", "/api/v1/proofs", "422") | _codes(schema, "post", "/api/v1/proofs", "409"))
    assert {"unsupported_file_type", "unsupported_media_type"} <= _codes(schema, "post", "/api/v1/proofs", "415")
    assert "email_taken" in _codes(schema, "post", "/api/v1/users", "409")
    assert _codes(schema, "get", "/api/v1/escrows", "429") == {"rate_limited"}
    # What a provider webhook refuses, not what processing stores as FAILED (answered 200).
    psp = schema["paths"]["/api/v1/psp/webhook"]["post"]["responses"]
    assert "409" not in psp and "webhook_signature_invalid" in _codes(schema, "post", "/api/v1/psp/webhook", "401")
    assert {"psp_refused", "psp_unavailable"} <= (_codes(schema, "post", "/api/v1/escrows/{id}/funding-session", "502")
                                                  | _codes(schema, "post", "/api/v1/escrows/{id}/funding-session",
                                                           "503"))


def test_money_currency_headers_and_limits_are_typed(schema):
    escrow = schema["components"]["schemas"]["EscrowRead"]["properties"]
    assert escrow["amount_total"]["pattern"] == r"^(?:0|[1-9][0-9]{0,15})\.[0-9]{2}$"  # never negative
    currency = escrow["currency"]
    currency = schema["components"]["schemas"][currency["$ref"].rsplit("/", 1)[1]] if "$ref" in currency else currency
    assert currency["enum"] == ["USD", "EUR", "CDF", "XOF", "XAF"]
    deposit = schema["paths"]["/api/v1/escrows/{id}/deposit"]["post"]
    key = next(p for p in deposit["parameters"] if p["name"] == "Idempotency-Key")
    assert key["required"] and key["schema"]["minLength"] == 1 and key["schema"]["maxLength"] == 255
    assert {"RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"} <= set(deposit["responses"]["200"]["headers"])
    assert "Retry-After" in deposit["responses"]["429"]["headers"]
    limit = next(p for p in schema["paths"]["/api/v1/escrows"]["get"]["parameters"] if p["name"] == "limit")
    assert limit["schema"] == {"type": "integer", "minimum": 1}
    webhook = schema["paths"]["/api/v1/psp/webhook"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert webhook["$ref"].endswith("PspEventRequest")
    for path in ("/health/live", "/health/ready", "/metrics", "/health"):
        assert path in schema["paths"]

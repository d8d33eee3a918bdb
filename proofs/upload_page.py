"""``/u/{token}``: the page a provider without an account opens on a phone, and its upload.

GET answers a small HTML page (a Django template, a few lines of plain
JavaScript for the progress bar): which milestone, what proof it expects,
a camera button (``<input type="file" accept="image/*" capture>``), and the
verdict in plain words. It names no client and shows no bank data. An
unknown link answers 401, an expired, revoked or used-up one 410 — both as
a clear page. POST takes the multipart ``file`` (and optional ``metadata``)
through the same checks as ``POST /proofs`` and answers JSON (201 with the
verdict, or the contract's error shape); a browser without JavaScript that
posts the form gets the verdict as a page.

The token in the URL is the credential: responses are never cached, never
sent as a Referer, never indexed. Both methods are rate limited per link and
per address (``proofs.link_ratelimit``).
"""

from __future__ import annotations

import secrets

from django.shortcuts import render
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from kobatela.accounts.keys import hash_key
from kobatela.accounts.openapi import ErrorSerializer
from kobatela.core.errors import DomainError, RateLimited
from proofs.api import JsonObjectTextField
from proofs.file_urls import proof_file_response, proof_for_signed
from proofs.link_ratelimit import upload_link_throttle
from proofs.upload_links import (
    milestone_expectation,
    proof_verdict,
    upload_link_resolve,
    upload_link_submit,
)


class LinkUploadSerializer(serializers.Serializer):
    file = serializers.FileField(allow_empty_file=False)
    metadata = JsonObjectTextField(required=False, max_length=10_000, help_text="A JSON object (informative only).")


LinkUploadResult = inline_serializer("LinkUploadResult", {
    "id": serializers.IntegerField(), "status": serializers.CharField(),
    "verdict": serializers.ChoiceField(choices=["accepted", "review", "refused"]),
    "message": serializers.CharField(), "sha256": serializers.CharField(), "created_at": serializers.DateTimeField(),
})


def _private(response, nonce: str | None = None):
    if response.status_code == 401:
        response["WWW-Authenticate"] = 'Bearer realm="kobatela-upload-link"'  # the token in the path is the credential
    response["Cache-Control"] = "no-store"
    response["Referrer-Policy"] = "no-referrer"
    response["X-Robots-Tag"] = "noindex, nofollow"
    if nonce:
        response["Content-Security-Policy"] = (
            f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; connect-src 'self'; "
            "img-src 'self' blob:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
    return response


class UploadPageView(APIView):
    authentication_classes: list = []  # the link's token is the credential
    permission_classes = [AllowAny]
    parser_classes = [MultiPartParser]
    http_method_names = ["get", "post", "head"]

    def perform_content_negotiation(self, request, force=False):
        # The page is HTML whatever the browser asks; the JSON answers use the API's renderer
        # (a no-JavaScript form post says Accept: text/html and must not get 406).
        renderer = self.renderer_classes[0]()
        return renderer, renderer.media_type

    def _throttle(self, request, token: str) -> None:
        upload_link_throttle(link_key=hash_key(token)[:32], client_ip=request.META.get("REMOTE_ADDR", ""))

    def _page(self, request, template: str, context: dict, code: int):
        nonce = secrets.token_urlsafe(16)
        response = render(request, template, {**context, "nonce": nonce}, status=code)
        response.is_page = True  # a page for a person, also when it says 401/410 (ApiJsonErrorsMiddleware)
        return _private(response, nonce)

    @extend_schema(responses={(200, "text/html"): OpenApiTypes.STR, (401, "text/html"): OpenApiTypes.STR,
                              (410, "text/html"): OpenApiTypes.STR, (429, "text/html"): OpenApiTypes.STR})
    def get(self, request, token: str):
        try:
            self._throttle(request, token)
            link = upload_link_resolve(token)
        except RateLimited as exc:
            page = self._page(request, "proofs/upload_closed.html",
                              {"title": "Please wait a moment", "message": exc.message}, 429)
            page["Retry-After"] = str(exc.details["retry_after"])
            return page
        except DomainError as exc:
            title = "Link not found" if exc.status == 401 else "This link is closed"
            return self._page(request, "proofs/upload_closed.html", {"title": title, "message": exc.message},
                              exc.status)
        milestone = link.milestone
        return self._page(request, "proofs/upload_page.html", {
            "milestone": milestone, "expects": milestone_expectation(milestone),
            "is_photo": milestone.proof_type == "PHOTO", "uploads_left": link.max_uploads - link.uploads_used,
            "expires_at": link.expires_at,
        }, 200)

    @extend_schema(request={"multipart/form-data": LinkUploadSerializer},
                   responses={201: LinkUploadResult, 410: ErrorSerializer, 429: ErrorSerializer})
    def post(self, request, token: str):
        wants_page = "text/html" in request.headers.get("Accept", "") and "X-Requested-With" not in request.headers
        try:
            self._throttle(request, token)
            serializer = LinkUploadSerializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            proof = upload_link_submit(token=token, upload=serializer.validated_data["file"],
                                       metadata=serializer.validated_data.get("metadata"))
        except DomainError as exc:
            if wants_page:
                return self._page(request, "proofs/upload_closed.html",
                                  {"title": "Not accepted", "message": exc.message}, exc.status)
            raise
        verdict = proof_verdict(proof)
        if wants_page:
            return self._page(request, "proofs/upload_closed.html",
                              {"title": "Thank you", "message": verdict.words}, status.HTTP_201_CREATED)
        return _private(Response({"id": proof.pk, "status": proof.status, "verdict": verdict.code,
                                  "message": verdict.words, "sha256": proof.sha256, "created_at": proof.created_at},
                                 status=status.HTTP_201_CREATED))

    def handle_exception(self, exc):
        return _private(super().handle_exception(exc))


class SignedFileView(APIView):
    """A proof's file behind a signed local URL (``proofs.file_urls``): the signature is the credential."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    http_method_names = ["get", "head"]

    @extend_schema(responses={(200, "application/octet-stream"): OpenApiTypes.BINARY})
    def get(self, request, signed: str):
        proof = proof_for_signed(signed)
        return _private(proof_file_response(proof, as_attachment=False))

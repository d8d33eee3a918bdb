from __future__ import annotations

from django.conf import settings

from kobatela.core.errors import PayloadTooLarge
from kobatela.core.request_context import accept_or_generate, reset_request_id, set_request_id
from kobatela.core.responses import error_response


class RequestIdMiddleware:
    """Echo the client's ``X-Request-ID`` (when well-formed) or generate one."""

    header = "X-Request-ID"

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request_id = accept_or_generate(request.headers.get(self.header))
        request.request_id = request_id
        token = set_request_id(request_id)
        try:
            response = self.get_response(request)
        finally:
            reset_request_id(token)
        response[self.header] = request_id
        return response


class BodySizeLimitMiddleware:
    """Refuse oversized bodies with 413 before anything reads them.

    JSON endpoints accept ``DATA_UPLOAD_MAX_MEMORY_SIZE`` bytes; multipart
    uploads (proofs) accept ``PROOF_MAX_UPLOAD_MB`` plus room for the form
    fields. The declared ``Content-Length`` is checked here; a body that lies
    about its length is still capped by Django's own upload limits.
    """

    multipart_overhead = 64 * 1024

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            length = int(request.headers.get("Content-Length") or 0)
        except ValueError:
            length = 0
        if request.content_type == "multipart/form-data":
            limit = settings.PROOF_MAX_UPLOAD_MB * 1024 * 1024 + self.multipart_overhead
        else:
            limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if length > limit:
            return error_response(
                PayloadTooLarge(details={"max_bytes": limit, "content_length": length})
            )
        return self.get_response(request)

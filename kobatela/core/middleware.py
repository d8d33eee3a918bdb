from __future__ import annotations

import logging

from django.conf import settings
from django.http import JsonResponse

from kobatela.core.errors import PayloadTooLarge
from kobatela.core.request_context import accept_or_generate, reset_request_id, set_request_id
from kobatela.core.responses import error_body, error_response

logger = logging.getLogger("django.request")


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


class ApiJsonErrorsMiddleware:
    """Under ``/api/``, every error is JSON in the contract's shape, in every mode.

    With ``DEBUG`` on, Django answers an unknown path or an uncaught exception
    with its HTML debug pages, bypassing ``handler404``/``handler500``; an API
    client must get the error shape there too (``make run`` runs with DEBUG).
    Any non-JSON error response under ``/api/`` is replaced by the handler's
    answer for its status — except a page a view meant to show a person
    (``response.is_page = True``: the providers' upload page says "this link
    is closed" with its 410); an exception no one handled is logged as Django
    logs it and answered by ``handler500`` (a database outage: 503)."""

    prefix = "/api/"
    _codes = {400: "bad_request", 403: "permission_denied", 404: "not_found", 405: "method_not_allowed"}

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if (request.path.startswith(self.prefix) and response.status_code >= 400
                and "json" not in response.get("Content-Type", "") and not getattr(response, "is_page", False)):
            code = self._codes.get(response.status_code, "internal_error" if response.status_code >= 500 else "error")
            message = "No such resource." if response.status_code == 404 else "The request failed."
            replaced = JsonResponse(error_body(code, message), status=response.status_code)
            for header in ("Allow", "Retry-After"):
                if header in response:
                    replaced[header] = response[header]
            return replaced
        return response

    def process_exception(self, request, exception):
        if not request.path.startswith(self.prefix) or not settings.DEBUG:
            return None  # without DEBUG, handler500 answers in the error shape already
        from kobatela.core.views import server_error

        logger.error("Internal Server Error: %s", request.path,
                     exc_info=(type(exception), exception, exception.__traceback__))
        return server_error(request)  # called inside Django's except block, as handler500 is

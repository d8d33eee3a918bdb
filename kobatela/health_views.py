"""Operators' endpoints: liveness, readiness, the detailed health and the metrics.

Wired by ``kobatela.urls`` beside the apps' routes. Apps add their own
sections to the detailed health from ``AppConfig.ready()``
(``kobatela.core.health.register_detail_section``), so this module knows none
of them.
"""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.utils.crypto import constant_time_compare
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET
from drf_spectacular.utils import extend_schema, inline_serializer
from prometheus_client import CONTENT_TYPE_LATEST
from rest_framework import serializers
from rest_framework.response import Response

from kobatela.core import health
from kobatela.core import metrics as core_metrics
from kobatela.core.errors import Forbidden
from kobatela.core.responses import error_response
from kobatela.core.scopes import Scope
from kobatela.core.viewsets import ApiView


# The operators' plain views use no session or cookie: exempt from CSRF, so that
# any method but GET is a 405 (not a CSRF 403 for methods Django deems unsafe).
@csrf_exempt
@require_GET
def live(request):
    return JsonResponse({"status": "ok"})


@csrf_exempt
@require_GET
def ready(request):
    checks = health.run_checks()
    ok = all(value == "ok" for value in checks.values())
    return JsonResponse({"status": "ok" if ok else "fail", "checks": checks}, status=200 if ok else 503)


class HealthDetailView(ApiView):
    """Detailed health for operators: readiness checks plus configuration presence
    (fingerprints only, never values), scheduler heartbeat age and app sections."""

    required_scopes = {Scope.ADMIN, Scope.SUPPORT}

    @extend_schema(responses=inline_serializer("HealthDetail", {"status": serializers.CharField(), "checks": serializers.DictField()}))
    def get(self, request):
        checks = health.run_checks()
        body = {
            "status": "ok" if all(v == "ok" for v in checks.values()) else "fail",
            "checks": checks,
            "environment": settings.DJANGO_ENV,
            "ai": {"enabled": settings.AI_PROOF_ADVISOR_ENABLED, "model": settings.AI_MODEL,
                   "api_key_configured": bool(settings.OPENAI_API_KEY)},
            "ocr": {"enabled": settings.OCR_ENABLED, "languages": settings.OCR_LANGUAGES},
            "scheduler": {"heartbeat_age_seconds": health.heartbeat_age_seconds()},
            "celery": {"eager": settings.CELERY_TASK_ALWAYS_EAGER},
        }
        for name, section in health.DETAIL_SECTIONS.items():
            body[name] = section()
        return Response(body)


def _loopback(request) -> bool:
    try:
        return ipaddress.ip_address(request.META.get("REMOTE_ADDR", "")).is_loopback
    except ValueError:
        return False


@csrf_exempt
@require_GET
def metrics(request) -> HttpResponse:
    """Prometheus text: the counters of every gunicorn worker (multiprocess mode)
    and the domain gauges (kobatela.core.metrics). With METRICS_TOKEN set, a
    matching bearer token is required; without it, only loopback clients are answered."""
    token = settings.METRICS_TOKEN
    if token:
        scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
        allowed = scheme.lower() == "bearer" and constant_time_compare(presented.strip(), token)
    else:
        allowed = _loopback(request)
    if not allowed:
        return error_response(Forbidden("metrics_forbidden", "Metrics are not available to this client."))
    return HttpResponse(core_metrics.scrape(), content_type=CONTENT_TYPE_LATEST)

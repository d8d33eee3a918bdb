"""AI-flag triage: the proofs the advisor flagged, counted by flag and risk, and
listed for a bulk "mark reviewed" (never a bulk approval).

The query and the page's context live here; the view that checks permissions
and calls the service is ``ProofAdmin.triage_view``.
"""

from __future__ import annotations

from collections.abc import Mapping

from django.core.paginator import Page, Paginator
from django.db import connection
from django.db.models import Q, QuerySet
from django.utils.http import urlencode

from proofs.admin.queue import QUEUE_ORDER, RISK_RANK
from proofs.models import Proof, ProofStatus, RiskLevel

__all__ = ["FLAGGED", "triage_context"]

#: ``Proof.ai_flagged`` as a query: medium or high risk, or any flag.
FLAGGED = Q(ai_risk_level__in=[RiskLevel.MEDIUM, RiskLevel.HIGH]) | ~Q(ai_flags=[])
PAGE_SIZE = 100
NO_FLAG = "(no flag)"  # a summary row for proofs flagged by their risk alone


def _params(query: Mapping[str, str]) -> dict[str, str]:
    return {"status": query.get("status", "pending"), "reviewed": query.get("reviewed", "no"),
            "flag": query.get("flag", ""), "risk": query.get("risk", "")}


def _flagged(params: Mapping[str, str]) -> QuerySet[Proof]:
    """Flagged proofs in the chosen status and review state (before flag and risk)."""
    base = Proof.objects.filter(FLAGGED)
    if params["status"] == "pending":
        base = base.filter(status=ProofStatus.PENDING)
    if params["reviewed"] == "no":
        base = base.filter(ai_reviewed_at__isnull=True)
    elif params["reviewed"] == "yes":
        base = base.filter(ai_reviewed_at__isnull=False)
    return base


def _summary(base: QuerySet[Proof]) -> dict[str, dict[str, int]]:
    """Counts per flag and risk level (a proof with two flags counts under both)."""
    summary: dict[str, dict[str, int]] = {}
    for flags, risk in base.values_list("ai_flags", "ai_risk_level").iterator(chunk_size=2000):
        for flag in flags or [NO_FLAG]:
            row = summary.setdefault(flag, {"high": 0, "medium": 0, "low": 0, "none": 0, "total": 0})
            row[risk or "none"] += 1
            row["total"] += 1
    return summary


def _listed(base: QuerySet[Proof], params: Mapping[str, str]) -> QuerySet[Proof]:
    listed = base.select_related("escrow", "milestone").defer("ocr_text", "metadata").annotate(risk_rank=RISK_RANK)
    if params["risk"] in RiskLevel.values:
        listed = listed.filter(ai_risk_level=params["risk"])
    if params["flag"]:
        if connection.features.supports_json_field_contains:
            listed = listed.filter(ai_flags__contains=[params["flag"]])
        else:  # SQLite (the embedded default): match in Python
            ids = [pk for pk, flags in base.values_list("pk", "ai_flags") if params["flag"] in (flags or [])]
            listed = listed.filter(pk__in=ids)
    return listed.order_by(*QUEUE_ORDER)


def triage_context(query: Mapping[str, str]) -> dict:
    """The triage page's context for the query string ``query`` (status, reviewed, flag, risk, page)."""
    params = _params(query)
    base = _flagged(params)
    page: Page = Paginator(_listed(base, params), PAGE_SIZE).get_page(query.get("page"))

    def link(**change):
        return "?" + urlencode({k: v for k, v in {**params, **change}.items() if v})

    return {
        "params": params,
        "summary": [
            {"flag": flag, **counts, "link": link(flag="" if flag == NO_FLAG else flag, risk="", page="")}
            for flag, counts in sorted(_summary(base).items(), key=lambda item: (-item[1]["total"], item[0]))
        ],
        "page": page,
        "risk_links": [(level, link(risk=level, page="")) for level in ("", *RiskLevel.values)],
        "status_links": [("pending", link(status="pending", page="")), ("all", link(status="all", page=""))],
        "reviewed_links": [(v, link(reviewed=v, page="")) for v in ("no", "yes", "all")],
        "page_links": {"previous": link(page=page.previous_page_number()) if page.has_previous() else None,
                       "next": link(page=page.next_page_number()) if page.has_next() else None},
    }

"""One risk picture of a proof for the reviewer, AI or not.

:func:`review_picture` turns what the checks found into

* ``priority``: one integer the review queue sorts by, highest first (stored on
  the proof as ``review_priority``, indexed with its status and age);
* ``flags``: the reasons a person must write a note to decide the proof
  (stored as ``review_flags``), each a short stable code.

Weights (additive, so two problems outrank one):

=====================================  ======  =====================
what                                   points  flag
=====================================  ======  =====================
photo re-used (perceptual hash match)  500     ``photo_reused``
a document check failed (each)         300     ``check_failed:<name>``
AI risk high / medium                  200/100 ``ai_risk_high``/``_medium``
AI flags (each, at most 5)             20      ``ai_flagged``
a required value missing (each)        60      ``check_missing:<name>``
photo warning (each)                   50      ``photo:<code>``
document not readable (OCR failed)     150     ``ocr_failed``
=====================================  ======  =====================

``no_geofence`` alone is a photo warning like any other: it explains why the
photo was not approved automatically, and asks for a note too (a person
decides where nothing was verified).

Pure Python: reads a proof's fields, writes nothing.
"""

from __future__ import annotations

from typing import Any

PRIORITY_MAX = 32767  # a PositiveSmallIntegerField
#: Warnings that come from reading a document (OCR), not from a photo's EXIF.
DOCUMENT_SOURCES = frozenset({"ocr"})


def review_picture(proof: Any) -> tuple[int, list[str]]:
    score = 0
    flags: list[str] = []
    warnings = (proof.validation or {}).get("warnings", [])
    for warning in warnings:
        code = warning.get("code", "?")
        if warning.get("source") in DOCUMENT_SOURCES:
            continue
        if code == "photo_reused":
            score += 500
            flags.append("photo_reused")
        else:
            score += 50
            flags.append(f"photo:{code}")
    checks = (proof.backend_checks or {}).get("checks", {})
    for name, check in sorted(checks.items()):
        status = (check or {}).get("status")
        if status == "fail":
            score += 300
            flags.append(f"check_failed:{name}")
        elif status == "missing":
            score += 60
            flags.append(f"check_missing:{name}")
    if getattr(proof, "ocr_status", "") == "FAILED":
        score += 150
        flags.append("ocr_failed")
    risk = getattr(proof, "ai_risk_level", "") or ""
    if risk == "high":
        score += 200
        flags.append("ai_risk_high")
    elif risk == "medium":
        score += 100
        flags.append("ai_risk_medium")
    ai_flags = list(getattr(proof, "ai_flags", None) or [])
    if ai_flags:
        score += 20 * min(len(ai_flags), 5)
        flags.append("ai_flagged")
    return min(score, PRIORITY_MAX), flags


def refresh(proof: Any) -> list[str]:
    """Set ``review_priority`` and ``review_flags`` on ``proof``; returns the field names to save."""
    proof.review_priority, proof.review_flags = review_picture(proof)
    return ["review_priority", "review_flags"]

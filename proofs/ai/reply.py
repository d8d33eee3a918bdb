"""The model's reply, checked before anyone uses it: the JSON must match the
response schema of :mod:`proofs.ai.prompt` exactly (a strict schema is asked
for, but a provider or a stub may still send anything), the score is kept as an
exact ``Decimal``, and the explanation is masked like every other free text.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from kobatela.core.masking import mask_text
from proofs.ai.errors import AdvisorInvalidResponse
from proofs.ai.prompt import FLAG_RE, MAX_EXPLANATION_CHARS, MAX_FLAGS, RISK_LEVELS

__all__ = ["AdvisorResult", "is_flagged", "validate_reply"]

_SCORE_QUANTUM = Decimal("0.001")


@dataclass(frozen=True)
class AdvisorResult:
    risk_level: str
    score: Decimal
    flags: tuple[str, ...]
    explanation: str
    model: str
    latency_ms: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (score as a string, to keep it exact)."""
        return {
            "risk_level": self.risk_level,
            "score": str(self.score),
            "flags": list(self.flags),
            "explanation": self.explanation,
            "model": self.model,
            "latency_ms": self.latency_ms,
        }


def is_flagged(result: AdvisorResult) -> bool:
    """Should a human look? Medium or high risk, or any flag."""
    return result.risk_level in ("medium", "high") or bool(result.flags)


def _reject_constant(name: str):
    raise ValueError(f"non-finite number {name}")


def validate_reply(content: Any) -> dict[str, Any]:
    """Parse and check the model's JSON; return clean fields or raise AdvisorInvalidResponse."""
    if not isinstance(content, str) or not content.strip():
        raise AdvisorInvalidResponse("empty reply", reason="empty_reply")
    try:
        data = json.loads(content, parse_constant=_reject_constant)
    except ValueError as exc:
        raise AdvisorInvalidResponse("reply is not JSON", reason="invalid_json") from exc
    if not isinstance(data, dict):
        raise AdvisorInvalidResponse("reply is not a JSON object", reason="invalid_schema")
    expected = {"risk_level", "score", "flags", "explanation"}
    if set(data) != expected:
        raise AdvisorInvalidResponse("reply fields differ from the schema", reason="invalid_schema")

    risk_level = data["risk_level"]
    if not isinstance(risk_level, str) or risk_level not in RISK_LEVELS:
        raise AdvisorInvalidResponse("risk_level outside the enum", reason="invalid_risk_level")

    raw_score = data["score"]
    if isinstance(raw_score, bool) or not isinstance(raw_score, (int, float)):
        raise AdvisorInvalidResponse("score is not a number", reason="invalid_score")
    try:
        score = Decimal(str(raw_score))
    except InvalidOperation as exc:  # pragma: no cover - str(float) always parses
        raise AdvisorInvalidResponse("score is not a number", reason="invalid_score") from exc
    if not score.is_finite() or not (Decimal(0) <= score <= Decimal(1)):
        raise AdvisorInvalidResponse("score outside [0, 1]", reason="invalid_score")
    score = score.quantize(_SCORE_QUANTUM, rounding=ROUND_HALF_UP)

    flags = data["flags"]
    if not isinstance(flags, list) or len(flags) > MAX_FLAGS:
        raise AdvisorInvalidResponse("flags is not a list of at most 20", reason="invalid_flags")
    for flag in flags:
        if not isinstance(flag, str) or not FLAG_RE.match(flag):
            raise AdvisorInvalidResponse("flag is not a short snake_case code", reason="invalid_flags")

    explanation = data["explanation"]
    if not isinstance(explanation, str):
        raise AdvisorInvalidResponse("explanation is not a string", reason="invalid_explanation")
    explanation = mask_text(explanation)[:MAX_EXPLANATION_CHARS]

    return {
        "risk_level": risk_level,
        "score": score,
        "flags": tuple(dict.fromkeys(flags)),
        "explanation": explanation,
    }

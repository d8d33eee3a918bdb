"""The call to the model: the ``openai`` SDK (chat completions, strict
``json_schema`` response format, explicit timeout and retries), every SDK
error mapped to an :class:`~proofs.ai.errors.AdvisorError` with a reason, and
the reply validated (:mod:`proofs.ai.reply`) before it is returned.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import openai

from proofs.ai.errors import AdvisorError, AdvisorInvalidResponse, AdvisorTimeout, AdvisorUnavailable
from proofs.ai.prompt import RESPONSE_FORMAT, build_messages
from proofs.ai.reply import AdvisorResult, validate_reply

__all__ = ["AdvisorConfig", "advise", "make_client"]


@dataclass(frozen=True)
class AdvisorConfig:
    api_key: str = field(repr=False)
    base_url: str | None = None  # None: the SDK's default (OpenAI)
    model: str = "gpt-4o-mini"
    timeout_seconds: float = 15.0  # per HTTP operation (connect/read/write)
    max_retries: int = 0  # the SDK's default would be 2
    max_ocr_chars: int = 4000
    max_completion_tokens: int = 500
    temperature: float | None = 0.0  # None: not sent (models that refuse it)

    def __post_init__(self) -> None:
        if not (self.timeout_seconds > 0):
            raise ValueError("timeout_seconds must be > 0")
        if self.max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        if self.max_ocr_chars < 0:
            raise ValueError("max_ocr_chars must be >= 0")


def make_client(config: AdvisorConfig) -> openai.OpenAI:
    """An SDK client with the timeout and retries set explicitly (SDK defaults: 600 s, 2 retries)."""
    return openai.OpenAI(
        api_key=config.api_key,
        base_url=config.base_url,
        timeout=config.timeout_seconds,
        max_retries=config.max_retries,
    )


def _map_sdk_error(exc: Exception) -> AdvisorError:
    if isinstance(exc, openai.APITimeoutError):
        return AdvisorTimeout("the AI provider did not answer in time")
    if isinstance(exc, openai.APIConnectionError):
        return AdvisorUnavailable("cannot reach the AI provider", reason="connection_error")
    if isinstance(exc, openai.RateLimitError):
        return AdvisorUnavailable("the AI provider is rate limiting", reason="rate_limited")
    if isinstance(exc, openai.APIResponseValidationError):
        return AdvisorInvalidResponse("the AI provider's reply did not match its API", reason="invalid_envelope")
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        if status >= 500:
            reason = "server_error"
        elif status in (401, 403):
            reason = "auth_error"
        elif status == 400:
            reason = "bad_request"
        else:
            reason = f"http_{status}"
        return AdvisorUnavailable(f"the AI provider answered HTTP {status}", reason=reason)
    return AdvisorUnavailable("AI SDK error", reason="sdk_error")


def advise(
    context: Mapping,
    *,
    config: AdvisorConfig,
    client: openai.OpenAI | None = None,
) -> AdvisorResult:
    """Score one proof's context. Raises an :class:`AdvisorError` subclass on any failure.

    A given ``client`` is used through ``with_options`` so the config's timeout
    and retries apply whatever the client was built with; without one, a client
    is made for this call and closed after it.
    """
    owned = client is None
    sdk = make_client(config) if owned else client.with_options(
        timeout=config.timeout_seconds, max_retries=config.max_retries
    )
    kwargs: dict[str, Any] = {
        "model": config.model,
        "messages": build_messages(context),
        "response_format": RESPONSE_FORMAT,
        "max_completion_tokens": config.max_completion_tokens,
    }
    if config.temperature is not None:
        kwargs["temperature"] = config.temperature

    started = time.monotonic()
    try:
        completion = sdk.chat.completions.create(**kwargs)
    except openai.OpenAIError as exc:
        raise _map_sdk_error(exc) from exc
    finally:
        if owned:
            sdk.close()
    latency_ms = int((time.monotonic() - started) * 1000)

    choices = getattr(completion, "choices", None) or []
    if not choices:
        raise AdvisorInvalidResponse("no choice in the reply", reason="empty_reply")
    choice = choices[0]
    message = choice.message
    if getattr(message, "refusal", None):
        raise AdvisorInvalidResponse("the model refused", reason="refusal")
    if choice.finish_reason == "length":
        raise AdvisorInvalidResponse("the reply was cut at the token limit", reason="truncated")
    if choice.finish_reason == "content_filter":
        raise AdvisorInvalidResponse("the reply was filtered", reason="content_filter")

    fields = validate_reply(message.content)
    model = str(getattr(completion, "model", "") or config.model)[:100]
    return AdvisorResult(model=model, latency_ms=latency_ms, **fields)

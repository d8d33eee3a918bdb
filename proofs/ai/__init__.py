"""The AI proof advisor: a second opinion on a proof, as a risk score.

Pure Python, no Django: the caller passes an :class:`AdvisorConfig` built from
settings, and decides what to do with the result (the advisor never approves,
rejects or releases anything; a flagged result only routes the proof to a
human). Callers are expected to wrap :func:`advise` with the shared
``CircuitBreaker`` / ``DailyCap`` (``kobatela.core.circuit_breaker``) and to
treat every :class:`AdvisorError` as "no opinion".

One module a step, in the order a proof goes through them:

* :mod:`proofs.ai.privacy` — :func:`build_context`: what may leave the building
  (an allowlist of sanitised fields, masked and scrubbed free text);
* :mod:`proofs.ai.prompt` — the system prompt, the strict response schema and
  the messages built from a context;
* :mod:`proofs.ai.client` — :func:`advise`: the ``openai`` SDK call (explicit
  timeout and retries), the provider's errors mapped to ours;
* :mod:`proofs.ai.reply` — the model's reply checked against the schema before
  anyone uses it, as an ``AdvisorResult``;
* :mod:`proofs.ai.errors` — :class:`AdvisorError` and its kinds, each with a
  short ``reason`` for logs and metrics.
"""

from proofs.ai.client import AdvisorConfig, advise
from proofs.ai.errors import AdvisorError
from proofs.ai.privacy import build_context

__all__ = ["AdvisorConfig", "AdvisorError", "advise", "build_context"]

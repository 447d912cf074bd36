"""THE one place errors become HTTP: status code, headers and body, per client wire format.

Every route funnels failures here. OpenAI-compatible routes get OpenAI's envelope
(``{"error": {"message", "type", "param", "code"}}``), ``/v1/messages`` gets Anthropic's
(``{"type": "error", "error": {"type", "message"}}``), so each official SDK raises its own typed
exception. Upstream failures are described by Breakwater's message (which names the provider and
what happened), never by the upstream's raw body.

Decisions where vendors differ:
- the provider rejecting *Breakwater's* credentials (401/403) or not knowing the deployment's
  model (404) is a gateway misconfiguration, not the caller's fault: 502, not 401/404;
- Anthropic's "overloaded" is 529 on ``/v1/messages`` (as Anthropic sends it) and 503 on OpenAI
  routes (OpenAI clients know 503, not 529);
- the gateway's own backpressure (``Saturated``: a deployment at its ``max_concurrency`` with no
  room to wait) is 429 with ``Retry-After`` and *without* ``x-should-retry: false``: the gateway
  did not retry it, so the SDK's own retry may. So are the configured limits (``LimitExceeded``),
  typed ``requests`` / ``tokens`` as OpenAI types its own rate-limit errors;
- a spent budget or session cap (``QuotaExceeded``) is 429 ``insufficient_quota``, OpenAI's answer
  to an exhausted quota, with ``x-should-retry: false``: waiting a few seconds will not help;
- a key that may not use a route (or a virtual key at the admin API) is 403; OpenAI types its
  permission errors ``invalid_request_error``, Anthropic ``permission_error``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import TypeVar

from breakwater.core import errors as e
from breakwater.providers import anthropic_serve, openai_serve
from breakwater.server.asgi import JSON_HEADERS, Headers

log = logging.getLogger("breakwater.server")

T = TypeVar("T")

# class -> (status, OpenAI type, Anthropic type); the most specific class wins (MRO order)
_TABLE: dict[type[BaseException], tuple[int, str, str]] = {
    e.InvalidRequest: (400, "invalid_request_error", "invalid_request_error"),
    e.UnsupportedParameter: (400, "invalid_request_error", "invalid_request_error"),
    e.ModelNotFound: (404, "invalid_request_error", "not_found_error"),
    e.NotFound: (404, "invalid_request_error", "not_found_error"),
    e.MethodNotAllowed: (405, "invalid_request_error", "invalid_request_error"),
    e.Conflict: (409, "invalid_request_error", "invalid_request_error"),
    e.PayloadTooLarge: (413, "invalid_request_error", "request_too_large"),
    e.UnsupportedMediaType: (415, "invalid_request_error", "invalid_request_error"),
    e.AuthenticationFailed: (401, "invalid_request_error", "authentication_error"),
    e.PermissionDenied: (403, "invalid_request_error", "permission_error"),
    e.RequestsLimitExceeded: (429, "requests", "rate_limit_error"),
    e.TokensLimitExceeded: (429, "tokens", "rate_limit_error"),
    e.LimitExceeded: (429, "rate_limit_error", "rate_limit_error"),
    e.QuotaExceeded: (429, "insufficient_quota", "rate_limit_error"),
    e.BackendUnavailable: (503, "service_unavailable_error", "api_error"),
    e.UpstreamBadRequest: (400, "invalid_request_error", "invalid_request_error"),
    e.RateLimited: (429, "rate_limit_error", "rate_limit_error"),
    e.Saturated: (429, "rate_limit_error", "rate_limit_error"),
    e.Overloaded: (503, "service_unavailable_error", "overloaded_error"),
    e.UpstreamTimeout: (504, "timeout_error", "timeout_error"),
    e.Unavailable: (503, "service_unavailable_error", "api_error"),
    e.ShuttingDown: (503, "service_unavailable_error", "api_error"),
    e.UpstreamError: (502, "api_error", "api_error"),
}
_INTERNAL = (500, "api_error", "api_error")


def classify(exc: BaseException) -> tuple[int, str, str]:
    for cls in type(exc).__mro__:
        row = _TABLE.get(cls)
        if row is not None:
            return row
    return _INTERNAL


def _message(exc: BaseException, request_id: str) -> str:
    if isinstance(exc, e.UpstreamError):
        # one line per failed upstream call, for operators; the message never holds a credential
        log.warning(
            "upstream call failed: %s",
            exc.message,
            extra={
                "request_id": request_id,
                "provider": exc.provider,
                "upstream_status": exc.upstream_status,
                "error": type(exc).__name__,
            },
        )
        return exc.message
    if isinstance(exc, e.BreakwaterError):
        return exc.message
    # a bug, not a user error: log it whole, show the caller only a reference
    log.error("internal error", exc_info=exc, extra={"request_id": request_id})
    return f"Internal gateway error (request id {request_id})"


def _headers(exc: BaseException, request_id: str) -> Headers:
    headers = [*JSON_HEADERS, (b"x-request-id", request_id.encode())]
    retry_after = getattr(exc, "retry_after", None)
    if retry_after is not None:
        headers.append((b"retry-after", str(max(1, round(retry_after))).encode()))
    if isinstance(exc, e.MethodNotAllowed):
        headers.append((b"allow", ", ".join(exc.allow).encode()))
    if isinstance(exc, (e.UpstreamError, e.QuotaExceeded)):
        # the gateway has already retried and fallen back (or a budget is spent: retrying will not
        # help); the OpenAI and Anthropic SDKs honour this header, so they do not retry on their own
        headers.append((b"x-should-retry", b"false"))
    return headers


def openai_error(exc: BaseException, request_id: str) -> tuple[int, Headers, bytes]:
    status, type_, _ = classify(exc)
    param = getattr(exc, "param", None)
    code = getattr(exc, "code", None) if isinstance(exc, e.BreakwaterError) else "internal_error"
    body = openai_serve.error_body(_message(exc, request_id), type_, param, code)
    return status, _headers(exc, request_id), body


def anthropic_error(exc: BaseException, request_id: str) -> tuple[int, Headers, bytes]:
    status, _, type_ = classify(exc)
    if isinstance(exc, e.Overloaded):
        status = 529
    body = anthropic_serve.error_body(_message(exc, request_id), type_)
    return status, _headers(exc, request_id), body


def stream_error(exc: BaseException, request_id: str, wire: str) -> tuple[str, str, str | None]:
    """(message, type, code) for an error event inside a stream that has already started."""
    _, openai_type, anthropic_type = classify(exc)
    code = getattr(exc, "code", None) if isinstance(exc, e.BreakwaterError) else "internal_error"
    return _message(exc, request_id), anthropic_type if wire == "anthropic" else openai_type, code


async def store_call(work: Awaitable[T], store: str, message: str, code: str) -> T:
    """A call to one of the gateway's own stores (responses, batches) on a request's behalf; its
    failure is a 503 ``BackendUnavailable`` saying ``message`` (logged by class, never its text,
    which may hold a connection string)."""
    try:
        return await work
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        log.warning("the %s store failed: %s", store, type(exc).__name__)
        raise e.BackendUnavailable(message, code=code) from exc

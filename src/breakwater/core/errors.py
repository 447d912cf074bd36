"""The typed error tree. Every failure inside Breakwater is one of these.

Errors know whether a retry may help and for how long to wait, but not HTTP status codes:
``breakwater.server.errors`` is the one place that maps them to a status and a wire body.

```
BreakwaterError
├── RequestError                  the client's request is wrong (never retryable)
│   ├── InvalidRequest            malformed JSON, wrong types, missing fields
│   │   ├── OutputBlocked         the route's output checks refused the answer (400)
│   │   └── InjectionBlocked      the route blocks prompt-injection attempts and this is one
│   ├── UnsupportedParameter      the chosen upstream cannot honour a parameter
│   ├── ModelNotFound             no route with that name
│   ├── PayloadTooLarge
│   ├── UnsupportedMediaType
│   ├── AuthenticationFailed      the caller's key is missing, unknown, revoked, expired...
│   ├── PermissionDenied          the key may not use this route (or a virtual key met the admin API)
│   ├── NotFound                  no such path
│   ├── MethodNotAllowed          the path exists, not with this method (carries ``allow``)
│   └── Conflict                  a change based on a state that has moved on (409)
├── Saturated                     the gateway's own backpressure: a deployment is at max
│                                 concurrency and the request cannot wait (retryable, retry_after)
├── LimitExceeded                 a configured rate or concurrency limit (retryable, retry_after)
│   ├── RequestsLimitExceeded     requests per minute
│   └── TokensLimitExceeded       tokens per minute
├── QuotaExceeded                 a budget or a session cap is used up (not retryable)
├── BackendUnavailable            the key store is not loaded yet, or the shared counters are
│                                 unreachable and limits fail closed (retryable)
├── ShuttingDown                  the gateway stopped before the request finished (retryable)
└── UpstreamError                 the provider failed (carries provider, upstream_status)
    ├── UpstreamAuthError         the provider rejected *our* credentials (401)
    ├── UpstreamPermissionError   403
    ├── UpstreamNotFound          404: the deployment's model does not exist upstream
    ├── UpstreamBadRequest        400/422 the provider refused the request
    │   ├── ContextLengthExceeded
    │   └── ContentFiltered
    ├── RateLimited               429 (retryable, retry_after)
    ├── Overloaded                529 / "overloaded" (retryable)
    ├── UpstreamServerError       5xx (retryable)
    ├── UpstreamTimeout           no answer in time (retryable)
    ├── UpstreamConnectionError   refused / reset / DNS (retryable)
    ├── MalformedResponse         the upstream spoke garbage (retryable)
    └── Unavailable               every attempt on every deployment failed (503)
        └── RegionUnavailable     no deployment in the request's allowed regions could serve
```
"""

from __future__ import annotations

from collections.abc import Mapping


class BreakwaterError(Exception):
    """Base of every error Breakwater raises on purpose."""

    retryable: bool = False
    #: stable machine-readable code, e.g. ``context_length_exceeded``; None if the class is enough
    code: str | None = None

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        retry_after: float | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.retry_after = retry_after
        if code is not None:
            self.code = code


class RequestError(BreakwaterError):
    """The client's request cannot be served as sent."""


class InvalidRequest(RequestError):
    code = "invalid_request"


class OutputBlocked(InvalidRequest):
    """The route's output checks refused the answer (``code`` names the check: a leaked system
    prompt, a denied pattern, JSON that does not satisfy the request's schema); the message names
    the kind of finding, never the text found."""

    code = "output_blocked"


class InjectionBlocked(InvalidRequest):
    """A user turn or tool result scored as a prompt-injection attempt on a route that blocks them.

    The message names the kind of message and the signals, never the text."""

    code = "prompt_injection_detected"


class UnsupportedParameter(RequestError):
    code = "unsupported_parameter"


class ModelNotFound(RequestError):
    code = "model_not_found"


class PayloadTooLarge(RequestError):
    code = "payload_too_large"


class UnsupportedMediaType(RequestError):
    code = "unsupported_media_type"


class AuthenticationFailed(RequestError):
    code = "invalid_api_key"


class NotFound(RequestError):
    code = "not_found"


class PermissionDenied(RequestError):
    code = "permission_denied"


class Conflict(RequestError):
    """The change was based on a state that has moved on (e.g. a configuration version applied meanwhile)."""

    code = "conflict"


class MethodNotAllowed(RequestError):
    """The path exists but not for this method; ``allow`` lists the methods it takes (``Allow`` header)."""

    code = "method_not_allowed"

    def __init__(self, message: str, allow: list[str]) -> None:
        super().__init__(message)
        self.allow = sorted(allow)


class LimitExceeded(BreakwaterError):
    """A limit configured on a key, team, user, tag or route (``engine/limits/quota.py``) refused the request.

    Nothing was counted for it; ``retry_after`` is when the limit has room again.
    """

    retryable = True
    code = "rate_limit_exceeded"


class RequestsLimitExceeded(LimitExceeded):
    """Requests per minute."""


class TokensLimitExceeded(LimitExceeded):
    """Tokens per minute."""


class QuotaExceeded(BreakwaterError):
    """A budget or a session's cap is used up: retrying soon will not help (``retry_after`` is
    the start of the next period, when there is one)."""

    code = "insufficient_quota"


class BackendUnavailable(BreakwaterError):
    """A store the gateway needs cannot be used: the keys are not loaded yet (``keys_unavailable``),
    or the limit counters (Redis) are unreachable and ``limits.on_backend_failure`` is ``closed``
    (``limits_unavailable``)."""

    retryable = True
    code = "limits_unavailable"


class Saturated(BreakwaterError):
    """A deployment is at its ``max_concurrency`` and the request cannot wait for a slot.

    Raised by the gateway's own backpressure (``engine/calls/admission.py``) before any upstream call:
    the queue is full, or the expected wait exceeds the request's deadline. ``retry_after`` is the
    estimated wait in whole seconds (at least 1). Not an ``UpstreamError``: no provider failed.
    """

    retryable = True
    code = "deployment_saturated"


class UpstreamError(BreakwaterError):
    """A provider call failed. ``provider`` names the configured provider, never a URL or key."""

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        upstream_status: int | None = None,
        param: str | None = None,
        retry_after: float | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message, param=param, retry_after=retry_after, code=code)
        self.provider = provider
        self.upstream_status = upstream_status


class UpstreamAuthError(UpstreamError):
    code = "upstream_authentication_error"


class UpstreamPermissionError(UpstreamError):
    code = "upstream_permission_error"


class UpstreamNotFound(UpstreamError):
    code = "upstream_model_not_found"


class UpstreamBadRequest(UpstreamError):
    code = "upstream_bad_request"


class ContextLengthExceeded(UpstreamBadRequest):
    code = "context_length_exceeded"


class ContentFiltered(UpstreamBadRequest):
    code = "content_filter"


class RateLimited(UpstreamError):
    retryable = True
    code = "rate_limit_exceeded"


class Overloaded(UpstreamError):
    retryable = True
    code = "overloaded"


class UpstreamServerError(UpstreamError):
    retryable = True
    code = "upstream_server_error"


class UpstreamTimeout(UpstreamError):
    retryable = True
    code = "upstream_timeout"


class UpstreamConnectionError(UpstreamError):
    retryable = True
    code = "upstream_connection_error"


class MalformedResponse(UpstreamError):
    retryable = True
    code = "upstream_malformed_response"


class Unavailable(UpstreamError):
    """Every attempt failed or was skipped; the message lists each deployment and why."""

    code = "all_deployments_failed"


class RegionUnavailable(Unavailable):
    """The request may go only to some regions (data residency) and no deployment there could
    serve it: the ones elsewhere were never called. The message names the allowed regions."""

    code = "region_unavailable"


class ShuttingDown(BreakwaterError):
    """The gateway is shutting down and cut the request (its drain deadline passed)."""

    retryable = True
    code = "shutting_down"


_CONTEXT_HINTS = (
    "context_length_exceeded",
    "context length",
    "context window",
    "maximum context",
    "too many tokens",
    "prompt is too long",
    "input is too long",
    "exceeds the maximum number of tokens",
)
_FILTER_HINTS = ("content_filter", "content filter", "content management policy", "safety")


def classify_status(
    status: int,
    message: str,
    *,
    provider: str,
    retry_after: float | None = None,
    overloaded: bool = False,
) -> UpstreamError:
    """Turn an upstream HTTP failure into the error tree: by status first, text only when ambiguous.

    Every adapter calls this from its own ``map_error`` after pulling the message out of its
    vendor's error body, so the status rules live in one place.

    Args:
        status: the upstream HTTP status.
        message: the vendor's error message; used only to split ambiguous 400s and never
            shown to clients verbatim by the server.
        provider: the configured provider name.
        retry_after: seconds from ``Retry-After`` / ``retry-after-ms`` if the vendor sent one.
        overloaded: the vendor body said "overloaded" (Anthropic's 529, also sent as 5xx).
    """

    def make(cls: type[UpstreamError], text: str, wait: float | None = None) -> UpstreamError:
        return cls(text, provider=provider, upstream_status=status, retry_after=wait)

    lowered = message.lower()
    if status in (400, 413, 422):
        if any(h in lowered for h in _CONTEXT_HINTS):
            return make(ContextLengthExceeded, f"{provider}: the prompt exceeds the model's context window")
        if any(h in lowered for h in _FILTER_HINTS):
            return make(ContentFiltered, f"{provider}: the request was blocked by the content filter")
        return make(UpstreamBadRequest, f"{provider} rejected the request: {_short(message)}")
    if status == 401:
        return make(UpstreamAuthError, f"{provider} rejected the gateway's credentials")
    if status == 403:
        if any(h in lowered for h in _FILTER_HINTS):
            return make(ContentFiltered, f"{provider}: the request was blocked by the content filter")
        return make(UpstreamPermissionError, f"{provider} denied permission for this request")
    if status == 404:
        return make(UpstreamNotFound, f"{provider} does not know the deployment's model")
    if status == 408:
        return make(UpstreamTimeout, f"{provider} timed out")
    if status == 429:
        return make(RateLimited, f"{provider} is rate limiting requests", retry_after)
    if status == 529 or overloaded:
        return make(Overloaded, f"{provider} is overloaded", retry_after)
    if status >= 500:
        return make(UpstreamServerError, f"{provider} returned a server error ({status})", retry_after)
    if status == 409:
        return make(UpstreamServerError, f"{provider} reported a conflict ({status})")
    return make(UpstreamBadRequest, f"{provider} rejected the request ({status})")


def _short(message: str, limit: int = 300) -> str:
    """Vendor 400 messages are useful to the caller (they name the bad field) but are capped."""
    message = " ".join(message.split())
    return message if len(message) <= limit else message[: limit - 1] + "…"


def parse_retry_after(raw_headers: Mapping[str, str]) -> float | None:
    """Seconds to wait, from ``retry-after-ms`` (preferred, finer) or ``retry-after`` (seconds).

    HTTP-date values are ignored: providers send seconds, and a date would need a clock here.
    Header names may be in any case (this runs on error paths only, so folding them is cheap).
    """
    headers = {k.lower(): v for k, v in raw_headers.items()}
    ms = headers.get("retry-after-ms")
    if ms is not None:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    s = headers.get("retry-after")
    if s is not None:
        try:
            return max(0.0, float(s))
        except ValueError:
            return None
    return None

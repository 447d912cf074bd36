"""The dashboard's HTTP pieces: the request as pages read it, forms, cookies, the origin check,
and the responses (with the security headers every dashboard answer carries)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from http.cookies import CookieError, SimpleCookie
from urllib.parse import parse_qs, quote, urlsplit

from breakwater.core.errors import InvalidRequest, PayloadTooLarge, UnsupportedMediaType
from breakwater.server.asgi import Headers, Receive, Scope, Send, header

FORM = b"application/x-www-form-urlencoded"
MAX_FORM_BYTES = 16 * 1024
"""The largest form the dashboard reads."""

_LOOPBACK = {"127.0.0.1", "localhost", "[::1]", "::1"}

#: every dashboard answer: no framing, no sniffing, scripts and styles only from the gateway itself
SECURITY_HEADERS: Headers = [
    (
        b"content-security-policy",
        b"default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        b"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
]


@dataclass(slots=True)
class Request:
    """One dashboard request: method, path, query parameters (last value wins), cookies."""

    scope: Scope
    method: str
    path: str
    query: dict[str, str]
    cookies: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, scope: Scope) -> Request:
        raw = scope.get("query_string", b"").decode("latin-1")
        try:
            query = {k: v[-1] for k, v in parse_qs(raw, max_num_fields=100, encoding="utf-8", errors="strict").items()}
        except (ValueError, UnicodeDecodeError):
            query = {"__invalid__": "1"}
        return cls(scope, scope["method"], scope["path"], query, _cookies(header(scope, b"cookie")))

    @property
    def host(self) -> str:
        value = header(self.scope, b"host")
        return value.decode("latin-1") if value else ""

    @property
    def client(self) -> str:
        client = self.scope.get("client")
        return str(client[0]) if client else "unknown"

    def plain_http_loopback(self) -> bool:
        """Plain HTTP to this machine (``http://127.0.0.1:...``): the one case the cookie is not ``Secure``."""
        hostname = self.host.rsplit(":", 1)[0] if not self.host.startswith("[") else self.host.split("]")[0] + "]"
        return self.scope.get("scheme") == "http" and hostname in _LOOPBACK

    def same_origin(self) -> bool:
        """The browser says the request came from a page of this gateway, or says nothing.

        Browsers send ``Origin`` with every form POST; when present it must name this host (as
        the ``Host`` header, or ``X-Forwarded-Host`` behind a proxy, has it). A request with no
        ``Origin`` (a non-browser client) still needs the session's CSRF token.
        """
        origin = header(self.scope, b"origin")
        if origin is None:
            return True
        parts = urlsplit(origin.decode("latin-1"))
        if parts.scheme not in ("http", "https") or not parts.netloc:
            return False
        hosts = {self.host}
        forwarded = header(self.scope, b"x-forwarded-host")
        if forwarded:
            hosts.add(forwarded.decode("latin-1").split(",")[0].strip())
        return parts.netloc in hosts


def _cookies(raw: bytes | None) -> dict[str, str]:
    if not raw:
        return {}
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(raw.decode("latin-1"))
    except CookieError:
        return {}
    return {name: morsel.value for name, morsel in jar.items()}


async def read_form(scope: Scope, receive: Receive) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body as a dict (last value wins).

    Raises:
        UnsupportedMediaType, PayloadTooLarge, InvalidRequest: the 4xx pages.
    """
    content_type = header(scope, b"content-type")
    # a body-less POST (no content type) reads as an empty form
    if content_type is not None and content_type.split(b";", 1)[0].strip().lower() != FORM:
        raise UnsupportedMediaType("The dashboard takes forms (application/x-www-form-urlencoded)")
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise InvalidRequest("The client disconnected before sending the whole form")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_FORM_BYTES:
            raise PayloadTooLarge(f"The form exceeds {MAX_FORM_BYTES} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    try:
        text = b"".join(chunks).decode("utf-8")
        fields = parse_qs(text, keep_blank_values=True, max_num_fields=100, errors="strict")
    except (ValueError, UnicodeDecodeError):
        raise InvalidRequest("The form is not valid UTF-8 form data") from None
    return {k: v[-1] for k, v in fields.items()}


def cookie_header(name: str, value: str, *, secure: bool, max_age: int) -> tuple[bytes, bytes]:
    """A ``Set-Cookie`` for the dashboard: HttpOnly, SameSite=Strict, Path=/ui, Secure unless told not."""
    parts = [f"{name}={value}", "Path=/ui", f"Max-Age={max_age}", "HttpOnly", "SameSite=Strict"]
    if secure:
        parts.append("Secure")
    return b"set-cookie", "; ".join(parts).encode("latin-1")


async def send_page(
    send: Send, status: int, body: bytes, content_type: bytes, extra: Sequence[tuple[bytes, bytes]] = ()
) -> None:
    """A dashboard answer: never cached, with the security headers."""
    headers: Headers = [
        (b"content-type", content_type),
        (b"cache-control", b"no-store"),
        *SECURITY_HEADERS,
        *extra,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def redirect(send: Send, location: str, extra: Sequence[tuple[bytes, bytes]] = ()) -> None:
    """303 See Other to a path of this gateway."""
    await send_page(send, 303, b"", b"text/plain", [(b"location", quote(location, safe="/?=&%").encode()), *extra])

"""AWS Signature Version 4 over the exact request the gateway sends, by botocore's signer.

The signature covers the method, path, query, the headers given and the SHA-256 of the body, so
it is computed last, on the finished ``HttpRequest``: nothing may change the URL, those headers
or the body afterwards. Signing is CPU only (HMAC-SHA256); resolving the credentials may block
(files, instance metadata), so it never happens here: a ``CredentialsSource`` hands over
credentials it already holds (``breakwater.infra.aws_credentials`` keeps them fresh off the
request path).

botocore (``breakwater[bedrock]``) is imported at the first signature, so a gateway without
Bedrock never loads it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from breakwater.core.errors import UpstreamAuthError
from breakwater.providers.base import HttpRequest

#: the SigV4 timestamp format (``X-Amz-Date``)
TIMESTAMP = "%Y%m%dT%H%M%SZ"


@dataclass(frozen=True, slots=True)
class AwsCredentials:
    """An access key pair, with a session token for temporary credentials. Secrets stay out of ``repr``."""

    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)


class CredentialsSource(Protocol):
    """Credentials already in memory: ``current`` never blocks and never does I/O."""

    def current(self) -> AwsCredentials | None:
        """The credentials to sign with now, or ``None`` while none could be resolved."""
        ...


@dataclass(frozen=True, slots=True)
class Signed:
    """A signed request and the two intermediate texts of its signature (AWS's test vectors
    publish both, so the tests compare them too)."""

    request: HttpRequest
    canonical_request: str
    string_to_sign: str


def sign(request: HttpRequest, credentials: AwsCredentials, region: str, service: str, now: datetime) -> Signed:
    """``request`` with the SigV4 headers added: ``X-Amz-Date``, ``X-Amz-Security-Token`` for
    temporary credentials, ``Authorization``.

    Args:
        request: the finished request; its URL, headers and body are what is signed.
        credentials: the key pair (and token) to sign with.
        region: the credential scope's region, e.g. ``us-east-1``.
        service: the signing name, ``bedrock`` for Bedrock Runtime.
        now: the signing time (UTC); the scope's date and ``X-Amz-Date`` come from it.
    """
    from botocore.auth import SigV4Auth  # lazily: only Bedrock deployments sign
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    headers = {k: v for k, v in request.headers.items() if k.lower() not in _SIGNING_HEADERS}
    headers["X-Amz-Date"] = now.astimezone(UTC).strftime(TIMESTAMP)
    if credentials.session_token:
        headers["X-Amz-Security-Token"] = credentials.session_token
    aws = AWSRequest(method=request.method, url=request.url, headers=headers, data=request.body)
    aws.context["timestamp"] = headers["X-Amz-Date"]
    auth = SigV4Auth(
        Credentials(credentials.access_key_id, credentials.secret_access_key, credentials.session_token),
        service,
        region,
    )
    # SigV4Auth.add_auth reads the wall clock itself; its public steps take the time from
    # ``context["timestamp"]``, so a signature can be reproduced (AWS's test vectors, the tests)
    canonical = auth.canonical_request(aws)
    to_sign = auth.string_to_sign(aws, canonical)
    signature = auth.signature(to_sign, aws)
    signed = auth.signed_headers(auth.headers_to_sign(aws))
    headers["Authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={auth.scope(aws)}, SignedHeaders={signed}, Signature={signature}"
    )
    return Signed(HttpRequest(request.method, request.url, headers, request.body, request.stream), canonical, to_sign)


_SIGNING_HEADERS = frozenset({"authorization", "x-amz-date", "x-amz-security-token"})


def load() -> None:
    """Import botocore's signer now (a config with Bedrock does this while it is built), so the
    first request does not pay for the import on the event loop."""
    import botocore.auth
    import botocore.awsrequest
    import botocore.credentials  # noqa: F401


class SigV4Signer:
    """Signs a deployment's requests with the credentials its source holds now.

    Args:
        source: where the current credentials are (never blocks).
        region: the credential scope's region.
        service: the signing name (``bedrock``).
        clock: seconds since the epoch (injected in tests).
    """

    __slots__ = ("clock", "region", "service", "source")

    def __init__(
        self, source: CredentialsSource, region: str, service: str = "bedrock", clock: Callable[[], float] = time.time
    ) -> None:
        self.source = source
        self.region = region
        self.service = service
        self.clock = clock

    def sign(self, request: HttpRequest, provider: str) -> HttpRequest:
        """``request`` signed. Raises ``UpstreamAuthError`` while the source has no credentials."""
        credentials = self.source.current()
        if credentials is None:
            raise UpstreamAuthError(f"{provider}: no AWS credentials could be resolved", provider=provider)
        now = datetime.fromtimestamp(self.clock(), UTC)
        return sign(request, credentials, self.region, self.service, now).request

    def __repr__(self) -> str:
        return f"SigV4Signer(region={self.region!r}, service={self.service!r})"


def credential_scope(authorization: str) -> dict[str, Any] | None:
    """The parts of a SigV4 ``Authorization`` header, or ``None`` if it is not one.

    ``{"access_key_id", "date", "region", "service", "signed_headers", "signature"}``; used by the
    mock to check that a request was signed for Bedrock.
    """
    scheme, _, rest = authorization.partition(" ")
    if scheme != "AWS4-HMAC-SHA256":
        return None
    fields = dict(p.strip().partition("=")[::2] for p in rest.split(","))
    scope = fields.get("Credential", "").split("/")
    signature = fields.get("Signature", "")
    if len(scope) != 5 or scope[4] != "aws4_request" or len(signature) != 64 or not fields.get("SignedHeaders"):
        return None
    return {
        "access_key_id": scope[0],
        "date": scope[1],
        "region": scope[2],
        "service": scope[3],
        "signed_headers": fields["SignedHeaders"].split(";"),
        "signature": signature,
    }

"""The ``server`` and ``redis`` sections: the HTTP server itself, and the Redis replicas share."""

from __future__ import annotations

import re

from pydantic import Field, field_validator

from breakwater.core.config.base import _Model, _secret_reference


class TlsSettings(_Model):
    """HTTPS: the certificate and key files the server presents (uvicorn's ssl options)."""

    #: ``file:/path`` of the PEM certificate (with its chain, leaf first)
    cert: str
    #: ``file:/path`` of the PEM private key
    key: str
    #: ``env:NAME`` / ``file:/path``: the key's passphrase, when the key is encrypted
    key_password: str | None = None

    @field_validator("cert", "key")
    @classmethod
    def _file_reference(cls, value: str) -> str:
        if not value.startswith("file:") or value == "file:":
            raise ValueError("expected a file reference, 'file:/path/to.pem'")
        return value

    @field_validator("key_password")
    @classmethod
    def _reference_only(cls, value: str | None) -> str | None:
        return _secret_reference(value)


class ServerSettings(_Model):
    max_body_bytes: int = Field(default=10 * 1024 * 1024, gt=0)
    #: after SIGTERM, seconds to keep serving with /readyz at 503 so load balancers stop sending
    #: (0: stop accepting at once; 5 or more behind Kubernetes)
    drain_delay_s: float = Field(default=0.0, ge=0)
    #: then, seconds in-flight requests and streams may take to finish before they are cut
    drain_timeout_s: float = Field(default=30.0, ge=0)
    #: ``env:NAME`` or ``file:/path``: the bearer token ``/admin/*`` requires (unset: open)
    admin_key: str | None = None
    #: serve HTTPS with this certificate and key (unset: plain HTTP, e.g. behind a TLS-terminating
    #: load balancer); read once at start, so a renewed certificate needs a restart
    tls: TlsSettings | None = None

    @field_validator("admin_key")
    @classmethod
    def _reference_only(cls, value: str | None) -> str | None:
        return _secret_reference(value)


class RedisSettings(_Model):
    """The Redis that replicas share (limit counters, key-cache invalidation)."""

    #: ``redis://host:6379/0``, ``rediss://`` or ``unix://``; with a password, an ``env:NAME`` /
    #: ``file:/path`` reference instead
    url: str
    #: no request waits longer than this for Redis: it goes on without it (limits counted locally)
    timeout_ms: float = Field(default=100.0, gt=0)
    #: prefix of every key and channel Breakwater uses
    namespace: str = Field(default="bw:", min_length=1)

    @field_validator("url")
    @classmethod
    def _redis_url(cls, value: str) -> str:
        if value.startswith(("env:", "file:")):
            return value
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError(
                "expected redis://host:port/db, rediss://..., unix://... or an env:NAME / file:/path reference"
            )
        if re.match(r"rediss?://[^/@]*:[^/@]+@", value):
            raise ValueError("a Redis password does not belong in the config: use url: env:NAME or file:/path")
        return value

"""HTTPS from the config's ``server.tls``: its files checked at start, and uvicorn's ssl options.

The certificate and key are ``file:`` references, handed to uvicorn as paths (each worker process
loads them when it starts); the key's passphrase, if any, is resolved here.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from typing import Any

from breakwater.core.config import Problem, TlsSettings
from breakwater.infra.credentials import CredentialError, resolve_optional

__all__ = ["tls_options", "tls_problems"]


def tls_options(tls: TlsSettings | None, environ: Mapping[str, str]) -> dict[str, Any]:
    """``uvicorn.Config`` keyword arguments serving HTTPS with ``tls`` (none for plain HTTP).

    Raises:
        CredentialError: the passphrase's reference names nothing.
    """
    if tls is None:
        return {}
    options: dict[str, Any] = {
        "ssl_certfile": tls.cert.removeprefix("file:"),
        "ssl_keyfile": tls.key.removeprefix("file:"),
    }
    if tls.key_password is not None:
        options["ssl_keyfile_password"] = resolve_optional(tls.key_password, environ)
    return options


def tls_problems(tls: TlsSettings | None, environ: Mapping[str, str]) -> list[Problem]:
    """What keeps the certificate and key from loading: a missing file, a key that is not the
    certificate's, a wrong passphrase. Messages name files, never a passphrase."""
    if tls is None:
        return []
    try:
        options = tls_options(tls, environ)
    except CredentialError as exc:
        return [Problem("server.tls.key_password", str(exc))]
    missing = [
        Problem(f"server.tls.{which}", f"no readable file at {path}")
        for which, path in (("cert", options["ssl_certfile"]), ("key", options["ssl_keyfile"]))
        if not os.access(path, os.R_OK) or not os.path.isfile(path)
    ]
    if missing:
        return missing
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(options["ssl_certfile"], options["ssl_keyfile"], options.get("ssl_keyfile_password"))
    except (ssl.SSLError, OSError, ValueError) as exc:
        reason = exc.reason if isinstance(exc, ssl.SSLError) and exc.reason else type(exc).__name__
        return [
            Problem(
                "server.tls",
                f"cannot load the certificate {options['ssl_certfile']} with the key {options['ssl_keyfile']} "
                f"({reason}: a key of another certificate, not PEM, or a wrong passphrase)",
            )
        ]
    return []

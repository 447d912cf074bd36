"""Redaction of secrets and personal data in text that leaves the request path (logs, captures).

The detectors are the shared set in ``core/detectors.py`` (data-loss prevention uses the same
ones); here each finding becomes a typed placeholder so a reader still sees *what* was there:
``[REDACTED]`` for a credential, ``[EMAIL]``, ``[CARD]``, ``[SSN]``, ``[PHONE]``, ``[IP]``,
``[IBAN]``... for personal data. Generic high-entropy tokens (kind ``token``) are left alone in
logs: request and trace ids look like them.

Pattern matching is a best effort: it catches the common shapes, not every secret a user can
type. Content capture is therefore off by default (``routes.X.capture``).
"""

from __future__ import annotations

from breakwater.core.detectors import KINDS, SECRET_SHAPES, Finding, replace, scan

__all__ = ["SECRET_SHAPES", "redact", "redact_secrets"]

#: what logs and captures hide: every kind but generic tokens
_LOGGED_KINDS = tuple(kind for kind in KINDS if kind != "token")


def _placeholder(finding: Finding) -> str:
    return "[REDACTED]" if finding.kind == "secret" else f"[{finding.kind.upper()}]"


def redact_secrets(text: str) -> str:
    """Credential-shaped substrings become ``[REDACTED]``."""
    return replace(text, scan(text, ("secret",)), _placeholder)


def redact(text: str) -> str:
    """Credentials and personal data in ``text`` replaced by typed placeholders."""
    return replace(text, scan(text, _LOGGED_KINDS), _placeholder)

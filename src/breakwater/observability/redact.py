"""Redaction of secrets and personal data in text that leaves the request path (logs, captures).

Two kinds of match, each replaced by a typed placeholder so a reader still sees *what* was there:

- credentials by shape: bearer tokens, ``sk-``/``pk-``/``rk-`` keys (OpenAI, Anthropic
  ``sk-ant-``), Google ``AIza`` keys, AWS access key ids, GitHub tokens, JWTs, PEM private
  keys, Breakwater ``bw-`` virtual keys (whole or mostly whole: a key's short display prefix,
  ``bw-`` and 8 characters, stays readable so logs can name a key);
- personal data: e-mail addresses, payment card numbers (13-19 digits passing the Luhn check),
  US social security numbers, phone numbers in international or North-American form, IPv4
  addresses.

Pattern matching is a best effort: it catches the common shapes, not every secret a user can
type. Content capture is therefore off by default (``routes.X.capture``).
"""

from __future__ import annotations

import re

SECRET_SHAPES = re.compile(
    r"(?i:\bbearer\s+[A-Za-z0-9._~+/=-]{8,})"
    r"|\b(?:sk|pk|rk)-[A-Za-z0-9_-]{8,}"
    r"|\bAIza[0-9A-Za-z_-]{20,}"
    r"|\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"
    r"|\bgh[pousr]_[A-Za-z0-9]{20,}"
    r"|\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"
    r"|-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----"
    r"|\bbw-[A-Za-z0-9_-]{16,}"
)
_EMAIL = re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b")
_CARD = re.compile(r"\b(?:\d[ -]?){12,18}\d\b")
_SSN = re.compile(r"\b\d{3}-\d{2}-\d{4}\b")
_PHONE = re.compile(r"(?<![\w+])(?:\+\d{1,3}[ .-]?)?\(?\d{3}\)?[ .-]\d{3}[ .-]\d{4}\b|\+\d{7,15}\b")
_IPV4 = re.compile(r"\b(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)\b")


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = int(ch)
        if i % 2 == 1:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total % 10 == 0


def _card(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group())
    return "[CARD]" if 13 <= len(digits) <= 19 and _luhn(digits) else match.group()


def redact_secrets(text: str) -> str:
    """Credential-shaped substrings become ``[REDACTED]``."""
    return SECRET_SHAPES.sub("[REDACTED]", text)


def redact(text: str) -> str:
    """Credentials and personal data in ``text`` replaced by typed placeholders."""
    text = redact_secrets(text)
    text = _EMAIL.sub("[EMAIL]", text)
    text = _CARD.sub(_card, text)
    text = _SSN.sub("[SSN]", text)
    text = _PHONE.sub("[PHONE]", text)
    return _IPV4.sub("[IP]", text)

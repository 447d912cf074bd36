"""What redaction hides, and what it leaves alone."""

from __future__ import annotations

import pytest

from breakwater.observability.redact import redact, redact_secrets


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("write to a.b-c@mail.example.org today", "write to [EMAIL] today"),
        ("card 4111-1111-1111-1111 ok", "card [CARD] ok"),
        ("order 4111-1111-1111-1112 ok", "order 4111-1111-1111-1112 ok"),  # fails Luhn: not a card
        ("ssn 078-05-1120", "ssn [SSN]"),
        ("call +1 415 555 0100 or (415) 555-0100", "call [PHONE] or [PHONE]"),
        ("from 192.168.10.4", "from [IP]"),
        ("Authorization: Bearer abc.def-ghi_jkl", "Authorization: [REDACTED]"),
        ("keys sk-ant-api03-abcdefgh and AKIAIOSFODNN7EXAMPLE", "keys [REDACTED] and [REDACTED]"),
        ("token ghp_abcdefghijklmnopqrstuvwxyz0123", "token [REDACTED]"),
        ("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N", "jwt [REDACTED]"),
        ("version 1.2.3 costs 12 dollars on 2026-11-23", "version 1.2.3 costs 12 dollars on 2026-11-23"),
    ],
)
def test_redact(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_private_keys_are_hidden_whole() -> None:
    pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\nabc\n-----END RSA PRIVATE KEY-----"
    assert redact_secrets(f"key:\n{pem}\nend") == "key:\n[REDACTED]\nend"

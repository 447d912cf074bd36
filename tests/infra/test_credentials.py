"""Credential references (``env:NAME``, ``file:/path``): resolving them, and values that may be either."""

from __future__ import annotations

from pathlib import Path

import pytest

from breakwater.infra.credentials import CredentialError, is_reference, resolve, resolve_optional


def test_resolve_reads_a_variable_or_a_file_and_none_is_none(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("  from-file\n", encoding="utf-8")
    assert resolve("env:KEY", {"KEY": "from-env"}) == "from-env"
    assert resolve(f"file:{secret}", {}) == "from-file"
    assert resolve(None, {}) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("env:KEY", True),
        ("file:/run/secrets/key", True),
        ("env:", True),
        ("sqlite:///keys.db", False),
        ("redis://localhost:6379/0", False),
        ("https://hooks.example/alerts", False),
        ("ENV:KEY", False),
        ("", False),
    ],
)
def test_is_reference_is_the_env_or_file_prefix(value: str, expected: bool) -> None:
    assert is_reference(value) is expected


def test_resolve_optional_resolves_a_reference(tmp_path: Path) -> None:
    secret = tmp_path / "url"
    secret.write_text("postgresql://user:pw@db/ledger\n", encoding="utf-8")
    assert resolve_optional("env:URL", {"URL": "redis://cache:6379/0"}) == "redis://cache:6379/0"
    assert resolve_optional(f"file:{secret}", {}) == "postgresql://user:pw@db/ledger"


@pytest.mark.parametrize("value", ["sqlite:///keys.db", "Bearer inline-token", ""])
def test_resolve_optional_returns_an_inline_value_as_it_is(value: str) -> None:
    assert resolve_optional(value, {"KEY": "unused"}) == value


def test_resolve_optional_raises_for_a_reference_that_names_nothing(tmp_path: Path) -> None:
    with pytest.raises(CredentialError, match="environment variable MISSING is not set"):
        resolve_optional("env:MISSING", {})
    with pytest.raises(CredentialError, match="environment variable EMPTY is not set"):
        resolve_optional("env:EMPTY", {"EMPTY": ""})
    with pytest.raises(CredentialError, match="cannot read credential file"):
        resolve_optional(f"file:{tmp_path / 'absent'}", {})
    empty = tmp_path / "empty"
    empty.write_text("\n", encoding="utf-8")
    with pytest.raises(CredentialError, match="is empty"):
        resolve_optional(f"file:{empty}", {})

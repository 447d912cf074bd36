"""What every section model shares: the strict base model and the checks of reference values.

Every model forbids unknown keys: a typo is an error today, and a new key is never silently
ignored by an older gateway.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict

_SECRET_REF = re.compile(r"^(env:[A-Za-z_][A-Za-z0-9_]*|file:.+)$")


def _secret_reference(value: str | None) -> str | None:
    if value is not None and not _SECRET_REF.match(value):
        raise ValueError("must be a reference, 'env:NAME' or 'file:/path'; keys are never written inline")
    return value


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _database_url(value: str) -> str:
    """``sqlite:///path``, ``postgresql://...`` (no password inline) or an ``env:`` / ``file:`` reference."""
    if value.startswith(("env:", "file:")):
        return value
    if not value.startswith(("sqlite:///", "postgresql://", "postgres://")):
        raise ValueError("expected sqlite:///path, postgresql://..., or an env:NAME / file:/path reference")
    if re.match(r"postgres(ql)?://[^/@]*:[^/@]*@", value):
        raise ValueError("a database password does not belong in the config: use env:NAME or file:/path")
    return value

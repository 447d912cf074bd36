"""Stored configuration versions: the record, and the port a store implements.

Every configuration applied to a store is an immutable, numbered version: who applied it, when,
why, its full YAML text and a hash of that text. Versions are only ever appended: a rollback
applies the text of an earlier version as a new version, so the history says what ran when and
why it changed. The running gateway follows the newest version (``runtime/stored_config.py``).

The key store implements the port (``infra/keystore/``: the versions live in the same SQLite
file or PostgreSQL database as the keys, in ``<prefix>_config``), so a deployment has one
database to back up.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Literal, Protocol

#: how a version came to be
Action = Literal["apply", "rollback", "auto-rollback", "start-up"]


@dataclass(frozen=True, slots=True)
class ConfigVersion:
    """One stored configuration."""

    number: int
    ts: float
    author: str
    action: str
    message: str
    text: str
    hash: str

    def public(self, *, text: bool = False) -> dict[str, Any]:
        """The version as the admin API and ``--json`` show it (the text only when asked)."""
        out: dict[str, Any] = {
            "number": self.number,
            "ts": self.ts,
            "author": self.author,
            "action": self.action,
            "message": self.message,
            "hash": self.hash,
        }
        if text:
            out["text"] = self.text
        return out


def text_hash(text: str) -> str:
    """The hash a version is known by: the first 16 hex digits of the SHA-256 of its text."""
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class ConfigVersions(Protocol):
    """Where configuration versions are stored (implemented by the key stores)."""

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def changed(self) -> bool | None:
        """Whether another connection may have written since the previous call (``None``: the
        store cannot tell; poll ``config_newest_number``)."""
        ...

    async def config_newest_number(self) -> int:
        """The newest version's number (0: none stored yet)."""
        ...

    async def config_get(self, number: int | None = None) -> ConfigVersion | None:
        """Version ``number``, or the newest when ``None``; ``None`` when there is no such version."""
        ...

    async def config_history(self, limit: int = 50) -> list[ConfigVersion]:
        """The newest versions, newest first."""
        ...

    async def config_append(
        self, text: str, *, author: str, action: str, message: str, now: float, expect: int | None = None
    ) -> ConfigVersion:
        """Store ``text`` as the next version and return it.

        Args:
            expect: the newest number the caller based its change on; when given and the newest
                is another, nothing is written.

        Raises:
            VersionConflict: ``expect`` is not the newest number any more.
        """
        ...


class VersionConflict(Exception):
    """Another version was applied since the one a change was based on."""

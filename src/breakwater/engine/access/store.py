"""The ``AccessStore`` port: where keys, teams, per-user/per-tag limits and the audit trail live.

``infra/keystore/`` implements it on SQLite (the embedded default) and PostgreSQL (several
replicas). Every change and its audit entry are written in one transaction, so neither exists
without the other; the audit entry holds the record before and after as ``public()`` shows it
(never a key or a hash). The request path never reads the store: ``engine/access/directory.py`` keeps an
in-memory snapshot and reloads it when ``version`` moves (checked when ``changed`` says so, or
on a timer when the store cannot tell).
"""

from __future__ import annotations

from typing import Protocol

from breakwater.core.keys import AccessSnapshot, AuditEntry, SubjectLimits, SubjectScope, Team, VirtualKey


class AccessStore(Protocol):
    async def open(self) -> None:
        """Connect and create the tables if needed."""
        ...

    async def close(self) -> None: ...

    async def version(self) -> int:
        """The number of the newest audit entry (0 for an empty store): it grows with every change."""
        ...

    async def changed(self) -> bool | None:
        """Whether another connection may have changed the store since the previous call (True on
        the first call): a check cheap enough to make several times a second, so that a change
        made by another process (the CLI) is seen at once. ``None``: the store has no such check
        (poll ``version``)."""
        ...

    async def snapshot(self) -> AccessSnapshot:
        """Every key, team and subject limit, and the version they were read at, in one read."""
        ...

    async def save_key(self, key: VirtualKey, *, actor: str, action: str, now: float) -> VirtualKey | None:
        """Insert or update ``key`` (by id) and audit it; return the record before.

        Raises:
            KeyConflict: another key already has this hash; nothing was written.
        """
        ...

    async def save_team(self, team: Team, *, actor: str, action: str, now: float) -> Team | None:
        """Insert or update ``team`` (by name) and audit it; return the record before."""
        ...

    async def delete_team(self, name: str, *, actor: str, now: float) -> Team | None:
        """Delete the team and audit it; return the record deleted (``None``: there was none, nothing audited)."""
        ...

    async def save_limits(self, entry: SubjectLimits, *, actor: str, action: str, now: float) -> SubjectLimits | None:
        """Insert or update limits for (scope, subject) and audit it; return the record before."""
        ...

    async def delete_limits(self, scope: SubjectScope, subject: str, *, actor: str, now: float) -> SubjectLimits | None:
        """Delete the limits for (scope, subject) and audit it; return what was deleted (``None``: nothing)."""
        ...

    async def audit(self, *, limit: int = 100, target: str | None = None) -> list[AuditEntry]:
        """The latest audit entries, newest first; only those about ``target`` when given."""
        ...


class KeyConflict(Exception):
    """A key with the same hash exists already (astronomically unlikely for random keys)."""

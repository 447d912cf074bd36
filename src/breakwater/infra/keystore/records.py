"""Records as column values and back: the one conversion both stores use.

Lists, tag maps and limits are stored as JSON text (SQLite keeps it as ``TEXT``; asyncpg's
default ``JSONB`` codec takes and returns the same text), booleans as Python ``bool`` (SQLite
stores 1/0, so reading goes through ``bool()``). The audit trail's before and after are the
records' ``public()`` dicts, so neither a key nor a hash can reach the audit table by this path.
Each ``*_COLUMNS`` tuple fixes the order of a table's values, for the schema and the SQL too.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, get_args

import orjson

from breakwater.core.keys import AuditEntry, SubjectLimits, SubjectScope, Team, VirtualKey
from breakwater.core.limits import Limits

#: one row as a driver returns it: a tuple (sqlite3) or an ``asyncpg.Record``
Row = Sequence[Any]

KEY_COLUMNS = (
    "id",
    "name",
    "prefix",
    "hash",
    "user",
    "team",
    "routes",
    "tags",
    "limits",
    "created_at",
    "expires_at",
    "revoked_at",
    "disabled",
    "previous_prefix",
    "previous_hash",
    "previous_until",
    "regions",
)
TEAM_COLUMNS = ("name", "limits", "tags", "created_at", "disabled", "regions")
LIMITS_COLUMNS = ("scope", "subject", "limits", "created_at")
AUDIT_COLUMNS = ("seq", "ts", "actor", "action", "target", "before", "after")
CONFIG_COLUMNS = ("number", "ts", "author", "action", "message", "text", "hash")
RESPONSE_COLUMNS = ("id", "owner", "created_at", "expires_at", "items", "response")
FILE_COLUMNS = ("id", "owner", "purpose", "filename", "bytes", "created_at", "content", "expires_at")
BATCH_COLUMNS = ("id", "owner", "status", "created_at", "expires_at", "lease_owner", "lease_until", "body")
BATCH_LINE_COLUMNS = ("batch_id", "custom_id", "idx", "ok", "line")

_SCOPES: tuple[SubjectScope, ...] = get_args(SubjectScope)


class Public(Protocol):
    """A record the audit trail can show."""

    def public(self) -> dict[str, Any]: ...


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def _loads(text: str | None) -> Any:
    return None if text is None else orjson.loads(text)


def key_values(key: VirtualKey) -> tuple[Any, ...]:
    """``key`` in ``KEY_COLUMNS`` order."""
    return (
        key.id,
        key.name,
        key.prefix,
        key.hash,
        key.user,
        key.team,
        _dumps(list(key.routes)),
        _dumps(key.tags),
        _dumps(key.limits.to_json()),
        key.created_at,
        key.expires_at,
        key.revoked_at,
        key.disabled,
        key.previous_prefix,
        key.previous_hash,
        key.previous_until,
        _dumps(list(key.regions)),
    )


def key_of(row: Row) -> VirtualKey:
    """What ``key_values`` stored."""
    values = dict(zip(KEY_COLUMNS, row, strict=True))
    values["routes"] = tuple(_loads(values["routes"]))
    values["regions"] = tuple(_loads(values["regions"]) or ())
    values["tags"] = _loads(values["tags"])
    values["limits"] = Limits.from_json(_loads(values["limits"]))
    values["disabled"] = bool(values["disabled"])
    return VirtualKey(**values)


def team_values(team: Team) -> tuple[Any, ...]:
    """``team`` in ``TEAM_COLUMNS`` order."""
    return (
        team.name,
        _dumps(team.limits.to_json()),
        _dumps(team.tags),
        team.created_at,
        team.disabled,
        _dumps(list(team.regions)),
    )


def team_of(row: Row) -> Team:
    """What ``team_values`` stored."""
    name, limits, tags, created_at, disabled, regions = row
    return Team(
        name, Limits.from_json(_loads(limits)), _loads(tags), created_at, bool(disabled), tuple(_loads(regions) or ())
    )


def limits_values(entry: SubjectLimits) -> tuple[Any, ...]:
    """``entry`` in ``LIMITS_COLUMNS`` order."""
    return (entry.scope, entry.subject, _dumps(entry.limits.to_json()), entry.created_at)


def limits_of(row: Row) -> SubjectLimits:
    """What ``limits_values`` stored."""
    scope, subject, limits, created_at = row
    if scope not in _SCOPES:
        raise ValueError(f"stored limits have an unknown scope {scope!r}")
    return SubjectLimits(scope, subject, Limits.from_json(_loads(limits)), created_at)


def audit_values(
    ts: float, actor: str, action: str, target: str, before: Public | None, after: Public | None
) -> tuple[Any, ...]:
    """An audit row without its ``seq`` (the database numbers it): ``AUDIT_COLUMNS[1:]`` order."""
    return (
        ts,
        actor,
        action,
        target,
        None if before is None else _dumps(before.public()),
        None if after is None else _dumps(after.public()),
    )


def audit_of(row: Row) -> AuditEntry:
    """An audit row read with every ``AUDIT_COLUMNS``."""
    seq, ts, actor, action, target, before, after = row
    return AuditEntry(int(seq), ts, actor, action, target, _loads(before), _loads(after))

"""The key store's tables, written once for SQLite and PostgreSQL.

Both stores hold the same logical schema; a ``Dialect`` says only what differs: the SQL type of
each logical type (JSON is ``TEXT`` in SQLite, ``JSONB`` in PostgreSQL), how the audit numbers
its rows, how a statement marks its parameters, and how it reads a member of a JSON column. Table names derive from one prefix, so
tests (and two gateways sharing one database) can keep separate tables.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from breakwater.infra.keystore.records import (
    AUDIT_COLUMNS,
    BATCH_COLUMNS,
    BATCH_LINE_COLUMNS,
    CONFIG_COLUMNS,
    FILE_COLUMNS,
    KEY_COLUMNS,
    LIMITS_COLUMNS,
    RESPONSE_COLUMNS,
    TEAM_COLUMNS,
)

_IDENT = re.compile(r"[a-z_][a-z0-9_]{0,40}")

# data residency (core/regions.py), added after the first schema: `added_columns` puts it on
# tables made before it, defaulted to no restriction
_REGIONS = "json NOT NULL DEFAULT '[]'"

# when a batch file is gone (engine/batches/store.py), added after the first schema: files made
# before it have none (NULL: never expire)
_FILE_EXPIRES = "real"

# The first word is a logical type the dialect replaces; the rest is the same SQL in both.
_KEYS = {
    "id": "text PRIMARY KEY",
    "name": "text NOT NULL",
    "prefix": "text NOT NULL",
    "hash": "text NOT NULL UNIQUE",
    "user": "text NOT NULL",
    "team": "text NOT NULL",
    "routes": "json NOT NULL",
    "tags": "json NOT NULL",
    "limits": "json NOT NULL",
    "created_at": "real NOT NULL",
    "expires_at": "real",
    "revoked_at": "real",
    "disabled": "bool NOT NULL",
    "previous_prefix": "text",
    # UNIQUE allows any number of NULLs in both databases: keys never rotated
    "previous_hash": "text UNIQUE",
    "previous_until": "real",
    "regions": _REGIONS,
}
_TEAMS = {
    "name": "text PRIMARY KEY",
    "limits": "json NOT NULL",
    "tags": "json NOT NULL",
    "created_at": "real NOT NULL",
    "disabled": "bool NOT NULL",
    "regions": _REGIONS,
}
_LIMITS = {
    "scope": "text NOT NULL",
    "subject": "text NOT NULL",
    "limits": "json NOT NULL",
    "created_at": "real NOT NULL",
}
_AUDIT = {
    "seq": "serial",
    "ts": "real NOT NULL",
    "actor": "text NOT NULL",
    "action": "text NOT NULL",
    "target": "text NOT NULL",
    "before": "json",
    "after": "json",
}
# the stored configuration versions (core/config/versions.py), numbered by the database
_CONFIG = {
    "number": "serial",
    "ts": "real NOT NULL",
    "author": "text NOT NULL",
    "action": "text NOT NULL",
    "message": "text NOT NULL",
    "text": "text NOT NULL",
    "hash": "text NOT NULL",
}
# the Responses API's stored responses (engine/responses/store.py), found by id and owner
_RESPONSES = {
    "id": "text PRIMARY KEY",
    "owner": "text NOT NULL",
    "created_at": "real NOT NULL",
    "expires_at": "real NOT NULL",
    "items": "json NOT NULL",
    "response": "json NOT NULL",
}
# batch files (engine/batches/store.py), their content with them; ``seq`` orders listings
_FILES = {
    "seq": "serial",
    "id": "text NOT NULL UNIQUE",
    "owner": "text NOT NULL",
    "purpose": "text NOT NULL",
    "filename": "text NOT NULL",
    "bytes": "int NOT NULL",
    "created_at": "real NOT NULL",
    "content": "blob NOT NULL",
    "expires_at": _FILE_EXPIRES,
}
# batches: the status and the runner's lease as columns, the rest of the record as JSON
_BATCHES = {
    "seq": "serial",
    "id": "text NOT NULL UNIQUE",
    "owner": "text NOT NULL",
    "status": "text NOT NULL",
    "created_at": "real NOT NULL",
    "expires_at": "real NOT NULL",
    "lease_owner": "text NOT NULL",
    "lease_until": "real NOT NULL",
    "body": "json NOT NULL",
}
# one row per answered (or failed) batch line, written once per custom_id
_BATCH_LINES = {
    "batch_id": "text NOT NULL",
    "custom_id": "text NOT NULL",
    "idx": "int NOT NULL",
    "ok": "bool NOT NULL",
    "line": "json NOT NULL",
}


@dataclass(frozen=True, slots=True)
class Dialect:
    """What SQLite and PostgreSQL spell differently."""

    #: logical type -> SQL type
    types: Mapping[str, str]
    #: parameter marker: ``?`` (``?1``, numbered) or ``$`` (``$1``)
    sigil: str
    #: a JSON column's top-level member as text: ``{column}`` and ``{key}`` filled in
    member: str

    def mark(self, n: int) -> str:
        """The marker of the ``n``-th parameter (from 1)."""
        return f"{self.sigil}{n}"

    def text_of(self, column: str, key: str) -> str:
        """SQL for the text of ``column``'s JSON member ``key`` (a plain identifier, spliced in)."""
        return self.member.format(column=column, key=key)


SQLITE = Dialect(
    {
        "text": "TEXT",
        "real": "REAL",
        "bool": "INTEGER",
        "int": "INTEGER",
        "blob": "BLOB",
        "json": "TEXT",
        "serial": "INTEGER PRIMARY KEY AUTOINCREMENT",
    },
    "?",
    # JSON1's function, in SQLite builds long before its `->>` operator (3.38)
    "json_extract({column}, '$.{key}')",
)
POSTGRES = Dialect(
    {
        "text": "TEXT",
        "real": "DOUBLE PRECISION",
        "bool": "BOOLEAN",
        "int": "BIGINT",
        "blob": "BYTEA",
        "json": "JSONB",
        "serial": "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
    },
    "$",
    "{column} ->> '{key}'",
)


@dataclass(frozen=True, slots=True)
class Tables:
    """The table names, from one prefix."""

    keys: str
    teams: str
    limits: str
    audit: str
    config: str
    responses: str
    files: str
    batches: str
    batch_lines: str

    @classmethod
    def named(cls, prefix: str) -> Tables:
        """``<prefix>_keys``, ``<prefix>_teams``, ``<prefix>_limits``, ``<prefix>_audit``,
        ``<prefix>_config``, ``<prefix>_responses``, ``<prefix>_files``, ``<prefix>_batches``,
        ``<prefix>_batch_lines``.

        Raises:
            ValueError: ``prefix`` is not a lower-case identifier (it is spliced into SQL).
        """
        if not _IDENT.fullmatch(prefix):
            raise ValueError(f"key store table prefix must be a lower-case identifier, got {prefix!r}")
        return cls(
            f"{prefix}_keys",
            f"{prefix}_teams",
            f"{prefix}_limits",
            f"{prefix}_audit",
            f"{prefix}_config",
            f"{prefix}_responses",
            f"{prefix}_files",
            f"{prefix}_batches",
            f"{prefix}_batch_lines",
        )


def quoted(columns: tuple[str, ...]) -> str:
    """A column list (``user`` is reserved in PostgreSQL, so every name is quoted)."""
    return ", ".join(f'"{c}"' for c in columns)


def added_columns(tables: Tables, dialect: Dialect) -> list[tuple[str, str, str]]:
    """``(table, column, definition)`` for each column added after a table was first made: a
    store adds the ones its tables lack when it opens (PostgreSQL: ``ADD COLUMN IF NOT EXISTS``;
    SQLite, which has no such clause, after reading the table's columns)."""
    kind, _, rest = _REGIONS.partition(" ")
    regions = f"{dialect.types[kind]} {rest}"
    return [
        (tables.keys, "regions", regions),
        (tables.teams, "regions", regions),
        (tables.files, "expires_at", dialect.types[_FILE_EXPIRES]),
    ]


def added_indexes(tables: Tables) -> list[str]:
    """``CREATE INDEX IF NOT EXISTS`` on added columns, run after ``added_columns`` (an index on a
    column an older table lacks cannot be made before it)."""
    # the sweep's look for expired files, every `poll_s`: from the index, never through the contents
    return [f"CREATE INDEX IF NOT EXISTS {tables.files}_expires ON {tables.files} (expires_at)"]


def create_statements(tables: Tables, dialect: Dialect) -> list[str]:
    """``CREATE ... IF NOT EXISTS`` for every table and index, one statement each."""

    def columns(order: tuple[str, ...], definitions: Mapping[str, str]) -> str:
        out = []
        for name in order:
            kind, _, rest = definitions[name].partition(" ")
            out.append(f'"{name}" {dialect.types[kind]} {rest}'.rstrip())
        return ", ".join(out)

    t = tables
    return [
        f"CREATE TABLE IF NOT EXISTS {t.keys} ({columns(KEY_COLUMNS, _KEYS)})",
        f"CREATE TABLE IF NOT EXISTS {t.teams} ({columns(TEAM_COLUMNS, _TEAMS)})",
        f"CREATE TABLE IF NOT EXISTS {t.limits} ({columns(LIMITS_COLUMNS, _LIMITS)}, PRIMARY KEY (scope, subject))",
        f"CREATE TABLE IF NOT EXISTS {t.audit} ({columns(AUDIT_COLUMNS, _AUDIT)})",
        # one record's history (`audit(target=...)`), newest first
        f"CREATE INDEX IF NOT EXISTS {t.audit}_target ON {t.audit} (target, seq)",
        f"CREATE TABLE IF NOT EXISTS {t.config} ({columns(CONFIG_COLUMNS, _CONFIG)})",
        f"CREATE TABLE IF NOT EXISTS {t.responses} ({columns(RESPONSE_COLUMNS, _RESPONSES)})",
        # expired responses removed as new ones are written
        f"CREATE INDEX IF NOT EXISTS {t.responses}_expires ON {t.responses} (expires_at)",
        f"CREATE TABLE IF NOT EXISTS {t.files} ({columns(('seq', *FILE_COLUMNS), _FILES)})",
        f"CREATE INDEX IF NOT EXISTS {t.files}_owner ON {t.files} (owner, seq)",
        f"CREATE TABLE IF NOT EXISTS {t.batches} ({columns(('seq', *BATCH_COLUMNS), _BATCHES)})",
        f"CREATE INDEX IF NOT EXISTS {t.batches}_owner ON {t.batches} (owner, seq)",
        # the runner's look for work: active batches only
        f"CREATE INDEX IF NOT EXISTS {t.batches}_status ON {t.batches} (status)",
        f"CREATE TABLE IF NOT EXISTS {t.batch_lines} ({columns(BATCH_LINE_COLUMNS, _BATCH_LINES)}, "
        "PRIMARY KEY (batch_id, custom_id))",
    ]

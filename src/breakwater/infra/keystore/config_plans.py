"""The configuration versions' calls as plans (sans-IO, like ``operations.py``), for both stores.

A version is appended under the store's write serialisation (SQLite's ``BEGIN IMMEDIATE``, the
PostgreSQL table lock), so numbers are handed out and committed in order and the ``expect``
check sees every committed version.
"""

from __future__ import annotations

from breakwater.core.config.versions import ConfigVersion, VersionConflict, text_hash
from breakwater.infra.keystore.operations import Plan, Query
from breakwater.infra.keystore.records import CONFIG_COLUMNS, Row
from breakwater.infra.keystore.schema import Dialect, Tables, quoted


class ConfigOperations:
    """``ConfigVersions`` (core/config/versions.py) as plans over ``tables.config``."""

    def __init__(self, tables: Tables, dialect: Dialect) -> None:
        m = dialect.mark
        select = f"SELECT {quoted(CONFIG_COLUMNS)} FROM {tables.config}"
        self._newest_number = f"SELECT COALESCE(MAX(number), 0) FROM {tables.config}"
        self._one = f"{select} WHERE number = {m(1)}"
        self._latest = f"{select} ORDER BY number DESC LIMIT {m(1)}"
        inserted = CONFIG_COLUMNS[1:]
        marks = ", ".join(m(i) for i in range(1, len(inserted) + 1))
        self._insert = (
            f"INSERT INTO {tables.config} ({quoted(inserted)}) VALUES ({marks}) RETURNING {quoted(CONFIG_COLUMNS)}"
        )

    def newest_number(self) -> Plan[int]:
        rows = yield Query(self._newest_number)
        return int(rows[0][0])

    def get(self, number: int | None) -> Plan[ConfigVersion | None]:
        rows = yield (Query(self._latest, (1,)) if number is None else Query(self._one, (number,)))
        return _version_of(rows[0]) if rows else None

    def history(self, limit: int) -> Plan[list[ConfigVersion]]:
        rows = yield Query(self._latest, (limit,))
        return [_version_of(r) for r in rows]

    def append(
        self, text: str, author: str, action: str, message: str, now: float, expect: int | None
    ) -> Plan[ConfigVersion]:
        newest = yield from self.newest_number()
        if expect is not None and newest != expect:
            raise VersionConflict(f"version {newest} was applied since version {expect}; nothing was written")
        rows = yield Query(self._insert, (now, author, action, message, text, text_hash(text)))
        return _version_of(rows[0])


def _version_of(row: Row) -> ConfigVersion:
    number, ts, author, action, message, text, digest = row
    return ConfigVersion(int(number), float(ts), author, action, message, text, digest)

"""The stored responses' calls as plans (sans-IO, like ``operations.py``), for both key stores.

A put replaces a record with the same id (ids are the gateway's own, so that happens only when a
caller stores twice) and removes the expired rows (by the ``expires_at`` index), so the table
holds what can still be read plus what expired since the last write.
"""

from __future__ import annotations

import orjson

from breakwater.engine.responses.store import StoredResponse
from breakwater.infra.keystore.operations import Plan, Query
from breakwater.infra.keystore.records import RESPONSE_COLUMNS, Row
from breakwater.infra.keystore.schema import Dialect, Tables, quoted


class ResponseOperations:
    """``ResponseStore`` (engine/responses/store.py) as plans over ``tables.responses``."""

    def __init__(self, tables: Tables, dialect: Dialect) -> None:
        m = dialect.mark
        table = tables.responses
        marks = ", ".join(m(i) for i in range(1, len(RESPONSE_COLUMNS) + 1))
        self._purge = f"DELETE FROM {table} WHERE expires_at <= {m(1)}"
        self._delete_one = f"DELETE FROM {table} WHERE id = {m(1)}"
        self._insert = f"INSERT INTO {table} ({quoted(RESPONSE_COLUMNS)}) VALUES ({marks})"
        self._get = (
            f"SELECT {quoted(RESPONSE_COLUMNS)} FROM {table} "
            f"WHERE id = {m(1)} AND owner = {m(2)} AND expires_at > {m(3)}"
        )
        self._delete = f"DELETE FROM {table} WHERE id = {m(1)} AND owner = {m(2)} RETURNING id"

    def put(self, record: StoredResponse, now: float) -> Plan[None]:
        yield Query(self._purge, (now,))
        yield Query(self._delete_one, (record.id,))
        items, response = orjson.dumps(record.items).decode(), orjson.dumps(record.response).decode()
        yield Query(self._insert, (record.id, record.owner, record.created_at, record.expires_at, items, response))

    def get(self, response_id: str, owner: str, now: float) -> Plan[StoredResponse | None]:
        rows = yield Query(self._get, (response_id, owner, now))
        return _record_of(rows[0]) if rows else None

    def delete(self, response_id: str, owner: str) -> Plan[bool]:
        rows = yield Query(self._delete, (response_id, owner))
        return bool(rows)


def _record_of(row: Row) -> StoredResponse:
    response_id, owner, created_at, expires_at, items, response = row
    return StoredResponse(
        response_id, owner, float(created_at), float(expires_at), orjson.loads(items), orjson.loads(response)
    )

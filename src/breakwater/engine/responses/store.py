"""Stored responses: the record, and the port a store implements.

``POST /v1/responses`` keeps each answer (unless the body says ``store: false``) so a later
request can continue it with ``previous_response_id``, and ``GET`` / ``DELETE
/v1/responses/{id}`` can read or remove it. A record belongs to the key that made it (its
``owner``): another key reading it finds nothing, exactly as if it did not exist. Records expire
``responses.ttl_s`` after they were made; an expired record is never returned, and stores remove
expired rows as they write.

Implemented by the key stores (``infra/keystore/response_plans.py``: the ``<prefix>_responses``
table of the SQLite file or PostgreSQL database that holds the keys) and in memory
(``infra/response_memory.py``), behind one conformance suite (tests/infra/test_response_stores.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """One response as kept: the Response object and the whole conversation it ends."""

    id: str
    #: the key that made it (``""`` with access control off)
    owner: str
    created_at: float
    expires_at: float
    #: the conversation's items, earlier turns included: its input items, then its output items
    items: list[dict[str, Any]]
    #: the Response object as the client got it
    response: dict[str, Any]


class ResponseStore(Protocol):
    """Where stored responses live."""

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def response_put(self, record: StoredResponse, now: float) -> None:
        """Keep ``record`` (replacing one with its id), and remove records expired at ``now``."""
        ...

    async def response_get(self, response_id: str, owner: str, now: float) -> StoredResponse | None:
        """The record, if ``owner`` made it and it has not expired at ``now``."""
        ...

    async def response_delete(self, response_id: str, owner: str) -> bool:
        """Remove the record ``owner`` made; whether there was one."""
        ...

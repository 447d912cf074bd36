"""The dashboard's reads of the ledger: the store, and its failures as 4xx/503 pages.

A bad parameter the ledger's queries refuse (``ValueError``) is a 400 naming it; a database that
cannot be read is a 503, as for ``/admin/usage``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable
from typing import TypeVar

import asyncpg  # type: ignore[import-untyped]

from breakwater.core.errors import InvalidRequest, NotFound, Unavailable
from breakwater.observability.ledger.service import Store
from breakwater.server.ui.view import View

T = TypeVar("T")


def ledger_store(view: View) -> Store:
    """The running ledger's store.

    Raises:
        NotFound: the ledger is disabled (``ledger.enabled: false``).
    """
    ledger = view.runtime.ledger
    if ledger is None:
        raise NotFound("The request ledger is disabled (ledger.enabled: false): the dashboard has no data to show")
    return ledger.store


def ledger_on(view: View) -> bool:
    return view.runtime.ledger is not None


async def read(query: Awaitable[T]) -> T:
    """Await a ledger query; its refusals and the database's failures become typed errors."""
    try:
        return await query
    except ValueError as exc:
        raise InvalidRequest(str(exc)) from None
    except (OSError, sqlite3.Error, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise Unavailable(
            f"The ledger database cannot be read: {type(exc).__name__}", code="ledger_unavailable"
        ) from exc

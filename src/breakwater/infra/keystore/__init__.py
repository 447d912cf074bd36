"""The two implementations of the ``AccessStore`` port (``engine/access/store.py``).

``SqliteKeyStore`` keeps keys, teams, per-user/per-tag limits and the audit trail in one file
(the embedded default, shared by the processes of one host); ``PostgresKeyStore`` shares them
across replicas. Both run the same operations (``operations.py``) over the same schema
(``schema.py``) with the same record conversion (``records.py``), and pass one conformance
suite (``tests/infra/keystore/test_conformance.py``).
"""

from __future__ import annotations

from pathlib import Path

from breakwater.infra.keystore.postgres import PostgresKeyStore
from breakwater.infra.keystore.sqlite import SqliteKeyStore

__all__ = ["PostgresKeyStore", "SqliteKeyStore", "store_for"]


def store_for(url: str) -> SqliteKeyStore | PostgresKeyStore:
    """``sqlite:///relative.db`` / ``sqlite:////absolute.db`` or ``postgresql://...``.

    Raises:
        ValueError: any other URL.
    """
    if url.startswith("sqlite:///"):
        return SqliteKeyStore(Path(url.removeprefix("sqlite:///")))
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresKeyStore(url)
    raise ValueError("key store url must start with sqlite:/// or postgresql://")

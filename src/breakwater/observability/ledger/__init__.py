"""The request ledger: one row per request, written off the request path in batches.

``LedgerWriter`` takes rows synchronously and writes them in the background to a store
(``SqliteLedger`` for one process, ``PostgresLedger`` in ``.postgres`` for several replicas),
spooling to a local file while the store is down. ``PostgresLedger`` is not re-exported here so
that importing the ledger does not import ``asyncpg``.
"""

from breakwater.observability.ledger.row import COLUMNS, LedgerRow
from breakwater.observability.ledger.sqlite import SqliteLedger
from breakwater.observability.ledger.writer import LedgerStore, LedgerWriter, Retention, RetentionStore

__all__ = ["COLUMNS", "LedgerRow", "LedgerStore", "LedgerWriter", "Retention", "RetentionStore", "SqliteLedger"]

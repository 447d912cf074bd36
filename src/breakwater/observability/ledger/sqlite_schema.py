"""The SQLite ledger's tables and indexes: created when a file is opened, and brought up to date
in a file an earlier version wrote (its missing columns added, the rollup's too).

The ledger table (``TABLE``) holds one row per request (``row.COLUMNS``), money as exact decimal
text; beside it the users' feedback, the drift watch's scores, and the hourly rollup with the
hour it covers from (``rollup.py``).
"""

from __future__ import annotations

import sqlite3
import time

from breakwater.observability.ledger import rollup
from breakwater.observability.ledger.row import ADDED_COLUMNS, COLUMNS

TABLE = "breakwater_ledger"
FEEDBACK_TABLE = "breakwater_feedback"
EVAL_SCORE_TABLE = "breakwater_eval_scores"

_TYPES = {
    "id": "TEXT PRIMARY KEY",
    "request_id": "TEXT NOT NULL",
    "trace_id": "TEXT",
    "ts": "REAL NOT NULL",
    "key_id": "TEXT NOT NULL",
    "user": "TEXT NOT NULL",
    "tags": "TEXT NOT NULL",
    "route": "TEXT NOT NULL",
    "deployment": "TEXT NOT NULL",
    "provider": "TEXT NOT NULL",
    "upstream_model": "TEXT NOT NULL",
    "attempts": "INTEGER NOT NULL",
    "fallback": "INTEGER NOT NULL",
    "status": "INTEGER NOT NULL",
    "error_class": "TEXT",
    "finish_reason": "TEXT",
    "input_tokens": "INTEGER NOT NULL",
    "cached_input_tokens": "INTEGER NOT NULL",
    "cache_write_tokens": "INTEGER NOT NULL",
    "output_tokens": "INTEGER NOT NULL",
    "reasoning_tokens": "INTEGER NOT NULL",
    "cost_usd": "TEXT",  # exact decimal as text: SQLite's NUMERIC would round through a double
    "latency_ms": "REAL NOT NULL",
    "ttft_ms": "REAL",
    "output_tps": "REAL",
    "stream": "INTEGER NOT NULL",
    "cache": "TEXT",
    "usage_estimated": "INTEGER NOT NULL",
    "prompt": "TEXT",
    "response": "TEXT",
    "upstream_ms": "REAL",
    "overhead_ms": "REAL",
    "dropped_params": "TEXT",
    "saved_usd": "TEXT",
    "branch": "TEXT",
    "decision": "TEXT",
    "shadow_of": "TEXT",
    "shadow_exact": "INTEGER",
    "shadow_similarity": "REAL",
    "prompt_name": "TEXT",
    "prompt_version": "INTEGER",
    "variant": "TEXT",
    "refused": "INTEGER",
    "temperature": "REAL",
    "max_tokens": "INTEGER",
    "top_p": "REAL",
    "seed": "INTEGER",
    "has_tools": "INTEGER",
    "response_format": "TEXT",
    "output_flags": "TEXT",
    "injection_score": "REAL",
    "injection_action": "TEXT",
    "dlp_findings": "TEXT",
    "trimmed_messages": "INTEGER",
    "trimmed_tokens": "INTEGER",
    "trim_summary": "INTEGER",
    "region": "TEXT",
    "routing_saved_usd": "TEXT",
}

#: the dashboard's covering index (observability/ledger/dashboard.py): every column its charts
#: read, after ``ts``, so a month of rows is read from the index alone, never from the table
#: (about 3x less to read); it costs each insert one more index entry (docs/dashboard.md)
_DASHBOARD_COLUMNS = (
    'ts, route, deployment, provider, "user", key_id, upstream_model, status, attempts, fallback, error_class,'
    " cache, latency_ms, ttft_ms, cost_usd, saved_usd"
)


def create_tables(conn: sqlite3.Connection) -> float:
    """Create what is missing (tables, columns of later versions, indexes, the rollup) in the file
    ``conn`` is open on; the first hour its rollup covers."""
    columns = ", ".join(f'"{c}" {_TYPES[c]}' for c in COLUMNS)
    conn.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} ({columns})")
    conn.execute(f"CREATE INDEX IF NOT EXISTS {TABLE}_ts ON {TABLE} (ts)")
    conn.execute(f'CREATE INDEX IF NOT EXISTS {TABLE}_ts_user ON {TABLE} (ts, "user")')
    conn.execute(f"CREATE INDEX IF NOT EXISTS {TABLE}_ts_route ON {TABLE} (ts, route)")
    conn.execute(f"CREATE INDEX IF NOT EXISTS {TABLE}_request ON {TABLE} (request_id)")  # feedback
    conn.execute(
        f"CREATE TABLE IF NOT EXISTS {FEEDBACK_TABLE} (request_id TEXT NOT NULL, ts REAL NOT NULL,"
        " key_id TEXT NOT NULL, score REAL NOT NULL, comment TEXT, tags TEXT NOT NULL)"
    )
    conn.execute(f"CREATE INDEX IF NOT EXISTS {FEEDBACK_TABLE}_request ON {FEEDBACK_TABLE} (request_id, key_id)")
    conn.execute(
        f"CREATE TABLE IF NOT EXISTS {EVAL_SCORE_TABLE} (request_id TEXT NOT NULL, ts REAL NOT NULL,"
        " route TEXT NOT NULL, score REAL NOT NULL, passed INTEGER NOT NULL, failed TEXT NOT NULL)"
    )
    conn.execute(f"CREATE INDEX IF NOT EXISTS {EVAL_SCORE_TABLE}_request ON {EVAL_SCORE_TABLE} (request_id)")
    conn.execute(f"CREATE INDEX IF NOT EXISTS {EVAL_SCORE_TABLE}_ts_route ON {EVAL_SCORE_TABLE} (ts, route)")
    present = {r[1] for r in conn.execute(f"PRAGMA table_info({TABLE})")}
    for name in ADDED_COLUMNS:
        if name not in present:  # a ledger file from an earlier version
            conn.execute(f'ALTER TABLE {TABLE} ADD COLUMN "{name}" {_TYPES[name]}')
    # after the columns they index are there: the dashboard's charts, a request's shadow calls
    # (few rows have one, so that index stays small)
    conn.execute(f"CREATE INDEX IF NOT EXISTS {TABLE}_dashboard ON {TABLE} ({_DASHBOARD_COLUMNS})")
    conn.execute(f"CREATE INDEX IF NOT EXISTS {TABLE}_shadow ON {TABLE} (shadow_of) WHERE shadow_of IS NOT NULL")
    for statement in rollup.schema(TABLE, postgres=False):
        conn.execute(statement)
    present = {r[1] for r in conn.execute(f"PRAGMA table_info({TABLE}_hourly)")}
    for figure in rollup.ADDED_FIGURES:
        if figure not in present:  # a new file, or a rollup from an earlier version
            conn.execute(rollup.added_figure_sql(TABLE, figure, postgres=False))
    start = conn.execute(f"SELECT start FROM {TABLE}_hourly_from").fetchone()
    if start is None:  # a new file, or one from before the rollups
        rows, newest = conn.execute(f"SELECT COUNT(*), MAX(ts) FROM {TABLE}").fetchone()
        start = (rollup.new_start(rows, newest, time.time()),)
        conn.execute(f"INSERT INTO {TABLE}_hourly_from (start) VALUES (?)", start)
    return float(start[0])

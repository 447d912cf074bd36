"""One request ledger row: what one request cost, who sent it, where it went, how it ended.

The row is the unit the writer batches, the stores insert and the disk spool holds. ``id`` is the
primary key in every store, so writing the same row twice (a spool replay after a write whose
reply was lost) is a no-op: delivery is at-least-once, storage exactly-once.
"""

from __future__ import annotations

import operator
from dataclasses import asdict, dataclass, fields
from decimal import Decimal
from typing import Any

import orjson


@dataclass(slots=True)
class LedgerRow:
    """One row per request; ``ts`` is the request start in unix seconds."""

    id: str
    request_id: str
    trace_id: str | None
    ts: float
    key_id: str
    user: str
    tags: dict[str, str]
    route: str
    deployment: str
    provider: str
    upstream_model: str
    attempts: int
    fallback: bool
    status: int
    error_class: str | None
    finish_reason: str | None
    input_tokens: int
    cached_input_tokens: int
    cache_write_tokens: int
    output_tokens: int
    reasoning_tokens: int
    cost_usd: Decimal | None
    latency_ms: float
    ttft_ms: float | None
    output_tps: float | None
    stream: bool
    cache: str | None
    usage_estimated: bool
    prompt: str | None
    response: str | None
    # Columns added after the first schema (ADDED_COLUMNS): defaulted, so spool lines written by an
    # earlier version still load, and stores add them to an existing table.
    #: time spent in upstream calls, every attempt (a stream: until its last event)
    upstream_ms: float | None = None
    #: what the gateway itself added: total latency minus upstream time, backoff and queue waits
    overhead_ms: float | None = None
    #: the request's parameters the upstream could not honour, comma-separated (``x-breakwater-dropped-params``)
    dropped_params: str | None = None
    #: a request served from the cache: what the call it replaced cost (its ``cost_usd`` is 0)
    saved_usd: Decimal | None = None
    #: a branching route's branch that answered, and why it was chosen (docs/routing.md)
    branch: str | None = None
    decision: str | None = None
    #: a shadow call's row: the request it mirrors, and how their answers compared (docs/safe-change.md)
    shadow_of: str | None = None
    shadow_exact: bool | None = None
    shadow_similarity: float | None = None
    #: the prompt of the registry the request was given, and its version (docs/prompts.md)
    prompt_name: str | None = None
    prompt_version: int | None = None
    #: a route with variants: the arm that took the request (docs/variants.md)
    variant: str | None = None
    #: the answer was a refusal (the refusal detector; ``None``: not checked)
    refused: bool | None = None
    #: the request's parameters as sent (any wire format, read from the canonical request), so a
    #: replay or a drift score knows what was asked; ``max_tokens`` is ``max_tokens`` or
    #: ``max_completion_tokens``; an integer beyond 64 bits is left out (``None``)
    temperature: float | None = None
    max_tokens: int | None = None
    top_p: float | None = None
    seed: int | None = None
    #: the request offered tools (their schemas are not kept)
    has_tools: bool | None = None
    #: the requested ``response_format`` type: ``text``, ``json_object`` or ``json_schema`` (no schema kept)
    response_format: str | None = None
    #: what the output checks found and did, ``check:action`` comma-separated (``canary:blocked``,
    #: ``structured:repaired``; docs/guardrails.md); ``""``: checked, nothing found; ``None``: not checked
    output_flags: str | None = None
    #: the prompt-injection check (docs/guardrails.md): the highest score of the scored messages
    #: (``None``: not checked), and ``logged`` / ``flagged`` / ``blocked`` when it was an attempt
    injection_score: float | None = None
    injection_action: str | None = None
    #: personal data and secrets found in the request (docs/guardrails.md): ``kind:action:count``
    #: pairs, comma-separated, e.g. ``email:mask:2,card:block:1``; kinds only, never a value
    dlp_findings: str | None = None
    #: the history trimmer (docs/configuration.md): messages removed, their estimated tokens, and
    #: whether a summary took their place (``None``: nothing trimmed)
    trimmed_messages: int | None = None
    trimmed_tokens: int | None = None
    trim_summary: bool | None = None
    #: the region of the deployment that served (data residency; ``None``: it declares none)
    region: str | None = None
    #: a branching route's answer (docs/routing.md, "Saved by routing"): what its tokens would have
    #: cost at the route's baseline branch, minus what the request cost (every cascade step
    #: included); negative when the choice cost more. ``None``: not a branching route, or unpriced
    routing_saved_usd: Decimal | None = None

    def to_json(self) -> bytes:
        """The row as one JSON object (no newline); ``cost_usd`` as a string so no precision is lost."""
        data = asdict(self)
        for name in DECIMALS:
            if data[name] is not None:
                data[name] = str(data[name])
        return orjson.dumps(data)

    @classmethod
    def from_json(cls, raw: bytes | str) -> LedgerRow:
        """The row ``to_json`` wrote.

        Raises:
            orjson.JSONDecodeError, TypeError, KeyError: the text is not a row (e.g. a torn spool line).
        """
        data: dict[str, Any] = orjson.loads(raw)
        for name in DECIMALS:
            value = data.get(name)
            data[name] = None if value is None else Decimal(value)
        return cls(**{name: data[name] for name in COLUMNS if name in data})


COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(LedgerRow))
"""Column names, in field order: every store's INSERT and SELECT use this order."""

ADDED_COLUMNS: tuple[str, ...] = (
    "upstream_ms",
    "overhead_ms",
    "dropped_params",
    "saved_usd",
    "branch",
    "decision",
    "shadow_of",
    "shadow_exact",
    "shadow_similarity",
    "prompt_name",
    "prompt_version",
    "variant",
    "refused",
    "temperature",
    "max_tokens",
    "top_p",
    "seed",
    "has_tools",
    "response_format",
    "output_flags",
    "injection_score",
    "injection_action",
    "dlp_findings",
    "trimmed_messages",
    "trimmed_tokens",
    "trim_summary",
    "region",
    "routing_saved_usd",
)
"""Nullable columns added after the first schema: each store adds them to a table that lacks them."""


#: money columns: exact decimals, written as strings wherever a float could round them
DECIMALS = ("cost_usd", "saved_usd", "routing_saved_usd")

_VALUES = operator.attrgetter(*COLUMNS)
_TAGS = COLUMNS.index("tags")


def column_values(row: LedgerRow) -> list[Any]:
    """A row's values in ``COLUMNS`` order, tags as JSON text (one C-level attribute read for all)."""
    values = list(_VALUES(row))
    values[_TAGS] = orjson.dumps(row.tags).decode()
    return values

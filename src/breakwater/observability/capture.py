"""Optional capture of prompts and answers into the ledger, sampled per route, always redacted.

Off by default. A route with ``capture: {enabled: true, sample_rate: 0.1}`` has one request in
ten stored with its messages (``prompt``, as JSON) and its answer text (``response``), both
passed through ``observability.redact.redact`` (credentials, e-mail addresses, card numbers,
phone numbers, SSNs, IP addresses) and cut to ``max_chars``. The sampling decision is made when
the request starts, so a stream only keeps its text when it will be stored.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import orjson

from breakwater.core.types import ChatRequest, ImagePart, TextPart
from breakwater.engine.context import RequestContext
from breakwater.observability.ledger.row import LedgerRow
from breakwater.observability.redact import redact


@dataclass(frozen=True, slots=True)
class CapturePolicy:
    sample_rate: float = 1.0
    max_chars: int = 20_000


class Capture:
    """Decides which requests are captured and fills their rows' ``prompt`` and ``response``."""

    def __init__(self, policies: Mapping[str, CapturePolicy], random: Callable[[], float]) -> None:
        self._policies = dict(policies)
        self._random = random

    def wants(self, route: str) -> bool:
        policy = self._policies.get(route)
        return policy is not None and (policy.sample_rate >= 1.0 or self._random() < policy.sample_rate)

    def fill(self, row: LedgerRow, ctx: RequestContext, request: ChatRequest | None) -> None:
        tally = ctx.tally
        policy = self._policies.get(row.route)
        if not tally.capture or policy is None or request is None:
            return
        messages = [
            {"role": m.role, "content": [p.text if isinstance(p, TextPart) else "[image]" for p in m.content
                                         if isinstance(p, (TextPart, ImagePart))]}
            for m in request.messages
        ]  # fmt: skip
        row.prompt = redact(orjson.dumps(messages).decode())[: policy.max_chars]
        if tally.output_text is not None:
            row.response = redact(tally.output_text)[: policy.max_chars]

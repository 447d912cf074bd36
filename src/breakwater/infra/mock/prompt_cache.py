"""The mock's prompt cache: the cached-token counts a provider would report, so a gateway's
prompt-cache accounting (ledger, metrics, costs, alerts) can be exercised without a provider.

- **Anthropic** (explicit): the prompt up to its last ``cache_control`` breakpoint (tools, then
  system, then messages; a top-level ``cache_control`` marks the whole prompt) is the prefix.
  The first request with a prefix writes it (``cache_creation_input_tokens``); a later one with
  the same prefix within ``TTL_S`` (refreshed on every read) reads it
  (``cache_read_input_tokens``). A prefix shorter than ``MIN_TOKENS`` is not cached.
- **OpenAI and Gemini** (implicit): a prompt of at least ``MIN_TOKENS`` whose tools and turns
  before the last one were seen within ``TTL_S`` reads that part, counted in steps of ``STEP``
  tokens as OpenAI reports it (``prompt_tokens_details.cached_tokens``).

Token counts are the mock's own (``model.count_tokens``). State is per ``MockService``, bounded.
"""

from __future__ import annotations

import copy
import zlib
from dataclasses import asdict, replace

import orjson

from breakwater.core.types import ChatRequest, Message, Usage
from breakwater.engine.ports import Clock
from breakwater.infra.mock.model import input_tokens

MIN_TOKENS = 1024
STEP = 128
TTL_S = 300.0
MAX_PREFIXES = 10_000


def _has_breakpoint(m: Message) -> bool:
    return (
        m.cache_control is not None
        or any(p.cache_control is not None for p in m.content)
        or any(c.cache_control is not None for c in m.tool_calls)
    )


class PromptCacheSim:
    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._seen: dict[int, float] = {}  # prefix hash -> expires at (monotonic)

    def usage(self, request: ChatRequest, usage: Usage | None, *, explicit: bool) -> Usage | None:
        """``usage`` with the prompt-cache counts a provider of this kind would report."""
        if usage is None:
            return None
        if explicit:
            prefix = self._marked_prefix(request)
            if prefix is None:
                return usage
            tokens = input_tokens(prefix)
            if tokens < MIN_TOKENS:
                return usage
            if self._read(prefix):
                return replace(usage, cached_input_tokens=tokens)
            return replace(usage, cache_creation_input_tokens=tokens)
        if usage.input_tokens < MIN_TOKENS or len(request.messages) < 2:
            return usage
        prefix = copy.copy(request)
        prefix.messages = request.messages[:-1]
        tokens = input_tokens(prefix) // STEP * STEP
        hit = self._read(prefix)
        if tokens < MIN_TOKENS or not hit:
            return usage
        return replace(usage, cached_input_tokens=tokens)

    def _marked_prefix(self, request: ChatRequest) -> ChatRequest | None:
        """The request cut after its last breakpoint, or ``None`` when it has none."""
        if request.cache_control is not None:
            return request
        last = max((i for i, m in enumerate(request.messages) if _has_breakpoint(m)), default=None)
        tools_marked = any(t.cache_control is not None for t in request.tools)
        if last is None and not tools_marked:
            return None
        prefix = copy.copy(request)
        prefix.messages = request.messages[: last + 1] if last is not None else []
        return prefix

    def _read(self, prefix: ChatRequest) -> bool:
        """Was this prefix cached (and still fresh)? It is cached (again) from now on either way."""
        key = zlib.crc32(orjson.dumps([asdict(t) for t in prefix.tools] + [asdict(m) for m in prefix.messages]))
        now = self._clock.monotonic()
        fresh = self._seen.get(key, 0.0) > now
        if len(self._seen) >= MAX_PREFIXES and key not in self._seen:
            self._seen.clear()  # a bounded memory: starting over only costs some cache writes
        self._seen[key] = now + TTL_S
        return fresh

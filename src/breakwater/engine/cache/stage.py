"""The cache stage: answer a request from the cache when it can, and keep the answers it can't.

For a route with ``cache: {mode: exact}`` (``engine/routing.Route.cache``), in this order:

1. directives (``x-breakwater-cache`` / ``breakwater_cache``): a malformed one is a 400;
2. a request that does not qualify (by default only deterministic ones: temperature 0 or a
   seed) is passed on, marked ``bypass``;
3. the entry under the request's key (``key.py``), unless ``no-cache``: one younger than its TTL
   is served (``hit``): replayed as a stream when the request streams (``replay.py``), no
   upstream called;
4. otherwise (``miss``) the request goes on, and its answer is stored in the background unless
   ``no-store``: a whole answer at once, a stream through a tap once it has finished normally;
   answers cut short, failed, filtered or larger than ``max_entry_bytes`` are never stored;
5. if the route allows ``stale_if_error_s`` and every deployment and fallback failed, an entry
   up to that much past its TTL is served instead (``stale``).

A store that cannot be reached (``CacheUnavailable``) or an entry that does not decode
(deleted) make a miss: the cache never fails a request. What was done is left on
``ctx.cache`` for the response headers and the ledger row (a served answer costs nothing and
records the cost it saved).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from breakwater.core.errors import ModelNotFound, Saturated, UpstreamBadRequest, UpstreamError
from breakwater.core.types import ChatRequest, ChatResponse, EmbeddingRequest, EmbeddingResponse
from breakwater.engine.cache.directives import parse_directives
from breakwater.engine.cache.entry import CacheEntry, CorruptEntry, decode_entry, encode_entry
from breakwater.engine.cache.key import cache_key, tenant_of
from breakwater.engine.cache.replay import Assembly, replayed, storable
from breakwater.engine.cache.semantic_scope import EmbedderFailed, question_of, scope_of
from breakwater.engine.cache.store import CacheStore, CacheUnavailable
from breakwater.engine.context import CACHE_BYPASS, CACHE_MISS, CacheOutcome, RequestContext
from breakwater.engine.pipeline import ChatAnswer, ChatCall, EmbeddingsCall, Stage
from breakwater.engine.ports import Clock
from breakwater.engine.routing import Route, Router
from breakwater.engine.tee import EventStream

if TYPE_CHECKING:  # numpy is imported only by a runtime with a semantic route
    from breakwater.engine.cache.semantic import Embedder, SemanticIndex, Vector

log = logging.getLogger("breakwater.cache")


class CacheCounts:
    """The stage's own counts, plain integers on the request path (``/metrics`` reads them)."""

    __slots__ = ("corrupt", "embed_failures", "lookup_s", "lookups", "stores", "too_large", "unavailable")

    def __init__(self) -> None:
        #: questions the embedder could not embed (their semantic lookup was skipped)
        self.embed_failures = 0
        self.lookups = 0
        self.lookup_s = 0.0
        self.stores = 0
        self.too_large = 0
        self.corrupt = 0
        self.unavailable = 0


def deterministic(request: ChatRequest) -> bool:
    """Would the model give this request the same answer again (as far as a request can ask)?"""
    return request.seed is not None or request.temperature == 0


@dataclass(slots=True)
class _Question:
    """A semantic route's request: its question, scope and embedding, to index its answer by."""

    text: str
    scope: str
    vector: Vector


class CacheStage(Stage):
    """Args:
    router: the routes (their cache policies and fingerprints).
    store: where entries live.
    clock: entry ages (wall time) and the replay's first-event time.
    semantic: the semantic index, when some route is ``mode: semantic``.
    embedder: what embeds the questions of semantic routes (with ``semantic``).
    """

    name = "cache"

    def __init__(
        self,
        router: Router,
        store: CacheStore,
        clock: Clock,
        semantic: SemanticIndex | None = None,
        embedder: Embedder | None = None,
    ) -> None:
        self.router = router
        self.store = store
        self.clock = clock
        self.semantic = semantic if embedder is not None else None
        self.embedder = embedder
        self.counts = CacheCounts()
        self._writes: set[asyncio.Task[None]] = set()
        #: the store's synchronous write, when it has one (memory): no task per stored answer
        self._set_now: Callable[[str, bytes, float], None] | None = getattr(store, "set_now", None)
        self._get_now: Callable[[str], bytes | None] | None = getattr(store, "get_now", None)
        self._delete_now: Callable[[str], None] = getattr(store, "delete_now", lambda key: None)

    def chat(self, call: ChatCall) -> ChatCall:
        # one coroutine per request (no wrapper around it): every await of the call below passes
        # through each frame between the endpoint and the upstream, on every resume
        return functools.partial(self._through, call)

    def embeddings(self, call: EmbeddingsCall) -> EmbeddingsCall:
        async def cached(request: EmbeddingRequest, ctx: RequestContext) -> EmbeddingResponse:
            route = self._caching(request.model)
            if route is None:
                return await call(request, ctx)
            return await self._embeddings(route, call, request, ctx)

        return cached

    def _caching(self, model: str) -> Route | None:
        """The route named ``model`` if it caches (an unknown name is the gateway's to refuse)."""
        route = self.router.routes.get(model)
        if route is None:
            try:
                route = self.router.resolve(model)
            except ModelNotFound:
                return None
        return route if route.cache is not None else None

    async def _through(self, call: ChatCall, request: ChatRequest, ctx: RequestContext) -> ChatAnswer:
        route = self._caching(request.model)
        if route is None:
            return await call(request, ctx)
        policy = route.cache
        assert policy is not None
        directives = parse_directives(ctx.cache_header, request.cache_directive)
        if policy.qualify == "deterministic" and not deterministic(request):
            ctx.cache = CACHE_BYPASS
            return await call(request, ctx)
        tenant = tenant_of(ctx.caller, policy.scope)
        key = cache_key(request, route.cache_fingerprint, tenant)
        stale: CacheEntry | None = None
        question: _Question | None = None
        if directives.no_cache:
            ctx.cache = CACHE_BYPASS
        else:
            entry = self._lookup_now(key) if self._get_now is not None else await self._lookup(key)
            if entry is not None and isinstance(entry.response, ChatResponse):
                age = max(self.clock.time() - entry.stored_at, 0.0)
                if age <= entry.ttl_s:
                    return self._serve("hit", entry, entry.response, age, route, request, ctx)
                if age <= entry.ttl_s + policy.stale_if_error_s:
                    stale = entry
            if policy.mode == "semantic" and self.semantic is not None:
                question = await self._question(request, route, tenant, ctx)
                if question is not None:
                    answer = await self._similar(question, policy.similarity, route, request, ctx)
                    if answer is not None:
                        return answer
            ctx.cache = CACHE_MISS
        try:
            answer = await call(request, ctx)
        except (UpstreamError, Saturated) as exc:
            if stale is None or isinstance(exc, UpstreamBadRequest):
                raise
            age = max(self.clock.time() - stale.stored_at, 0.0)
            log.warning("serving a stale cached answer: every upstream failed", extra={"request_id": ctx.request_id})
            assert isinstance(stale.response, ChatResponse)  # only chat entries are kept as stale
            return self._serve("stale", stale, stale.response, age, route, request, ctx)
        if directives.no_store:
            return answer
        ttl = directives.ttl_s or policy.ttl_s
        keep_s = ttl + policy.stale_if_error_s
        if directives.no_cache and policy.mode == "semantic" and self.semantic is not None:
            question = await self._question(request, route, tenant, ctx)  # not looked up: still indexed

        def keep(response: ChatResponse) -> None:
            if self._store(key, response, ttl, keep_s, policy.max_entry_bytes, ctx) and question is not None:
                assert self.semantic is not None
                self.semantic.add(question.scope, question.text, key, question.vector)

        if isinstance(answer, EventStream):
            answer.tap(Assembly(keep))
        elif storable(answer):
            keep(answer)
        return answer

    async def _question(self, request: ChatRequest, route: Route, tenant: str, ctx: RequestContext) -> _Question | None:
        """The request's question for the semantic index, or ``None`` when it has none to look up
        (the last turn is not a user's plain text, or the embedder failed)."""
        embedder = self.embedder
        assert embedder is not None
        text = question_of(request)
        if text is None:
            return None
        try:
            vector = await embedder.embed(text, ctx.regions)
        except EmbedderFailed as exc:
            self.counts.embed_failures += 1
            log.warning("semantic lookup skipped: %s", exc, extra={"request_id": ctx.request_id})
            return None
        return _Question(text, scope_of(request, route.cache_fingerprint, tenant), vector)

    async def _similar(
        self, question: _Question, threshold: float, route: Route, request: ChatRequest, ctx: RequestContext
    ) -> ChatAnswer | None:
        """The answer to a similar question in the same scope, if one is stored and still fresh."""
        semantic = self.semantic
        assert semantic is not None
        match = semantic.match(question.scope, question.text, question.vector, threshold)
        if match is None:
            return None
        entry = await self._lookup(match.key)
        if entry is None or not isinstance(entry.response, ChatResponse):
            semantic.forget(question.scope, match.key)  # its answer expired or was evicted
            return None
        age = max(self.clock.time() - entry.stored_at, 0.0)
        if age > entry.ttl_s:
            return None
        answer = self._serve("semantic-hit", entry, entry.response, age, route, request, ctx)
        assert ctx.cache is not None
        ctx.cache.similarity = match.similarity
        return answer

    async def _embeddings(
        self, route: Route, call: EmbeddingsCall, request: EmbeddingRequest, ctx: RequestContext
    ) -> EmbeddingResponse:
        """Embeddings always qualify (the same input embeds the same); directives come by header only."""
        policy = route.cache
        assert policy is not None
        directives = parse_directives(ctx.cache_header)
        key = cache_key(request, route.cache_fingerprint, tenant_of(ctx.caller, policy.scope))
        if directives.no_cache:
            ctx.cache = CACHE_BYPASS
        else:
            entry = await self._lookup(key)
            if entry is not None and isinstance(entry.response, EmbeddingResponse):
                age = max(self.clock.time() - entry.stored_at, 0.0)
                if age <= entry.ttl_s:
                    self._served("hit", entry, age, route, ctx)
                    return entry.response
            ctx.cache = CACHE_MISS
        response = await call(request, ctx)
        if not directives.no_store:
            ttl = directives.ttl_s or policy.ttl_s
            self._store(key, response, ttl, ttl, policy.max_entry_bytes, ctx)
        return response

    def _lookup_now(self, key: str) -> CacheEntry | None:
        """``_lookup`` on a store that answers at once (memory): no coroutine, nothing to time out."""
        assert self._get_now is not None
        counts = self.counts
        started = self.clock.monotonic()
        counts.lookups += 1
        value = self._get_now(key)
        entry: CacheEntry | None = None
        if value is not None:
            try:
                entry = decode_entry(value)
            except CorruptEntry:
                counts.corrupt += 1
                self._delete_now(key)  # at once: a later delete would take the answer stored next
        counts.lookup_s += self.clock.monotonic() - started
        return entry

    async def _lookup(self, key: str) -> CacheEntry | None:
        counts = self.counts
        started = self.clock.monotonic()
        counts.lookups += 1
        try:
            value = await self.store.get(key)
            if value is None:
                return None
            try:
                return decode_entry(value)
            except CorruptEntry:
                counts.corrupt += 1
                await self.store.delete(key)
                return None
        except CacheUnavailable as exc:
            counts.unavailable += 1
            log.warning("cache lookup skipped: %s", exc)
            return None
        finally:
            counts.lookup_s += self.clock.monotonic() - started

    def _served(self, status: str, entry: CacheEntry, age: float, route: Route, ctx: RequestContext) -> None:
        usage = entry.response.usage
        ctx.cache = CacheOutcome(status, age, entry.deployment, entry.provider, entry.upstream_model, usage)
        ctx.outcome.route = route.name

    def _serve(
        self,
        status: str,
        entry: CacheEntry,
        response: ChatResponse,
        age: float,
        route: Route,
        request: ChatRequest,
        ctx: RequestContext,
    ) -> ChatAnswer:
        self._served(status, entry, age, route, ctx)
        ctx.tally.response(response)
        if not request.stream:
            return response
        ctx.tally.first_event_at = ctx.tally.last_event_at = self.clock.monotonic()
        return replayed(response)

    def _store(
        self,
        key: str,
        response: ChatResponse | EmbeddingResponse,
        ttl: float,
        keep_s: float,
        max_bytes: int,
        ctx: RequestContext,
    ) -> bool:
        outcome = ctx.outcome
        entry = CacheEntry(
            self.clock.time(),
            ttl,
            outcome.deployment or "",
            outcome.provider or "",
            outcome.upstream_model or "",
            response,
        )
        value = encode_entry(entry)
        if len(value) > max_bytes:
            self.counts.too_large += 1
            return False
        if self._set_now is not None:
            self._set_now(key, value, keep_s)
            self.counts.stores += 1
            return True
        task = asyncio.get_running_loop().create_task(self._write(key, value, keep_s))
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)
        return True

    async def _write(self, key: str, value: bytes, keep_s: float) -> None:
        try:
            await self.store.set(key, value, keep_s)
            self.counts.stores += 1
        except CacheUnavailable as exc:
            self.counts.unavailable += 1
            log.warning("cache store skipped: %s", exc)

    async def drain(self) -> None:
        """Wait for the writes in flight (at shutdown, and in tests)."""
        while self._writes:
            await asyncio.gather(*self._writes, return_exceptions=True)

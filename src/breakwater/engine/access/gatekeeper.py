"""The checks every request passes before the gateway calls upstream, in order.

1. authentication: the key (``engine/access/directory.py``), which fixes the caller's user (a key's
   owner cannot be overridden by ``x-breakwater-user``) and adds the key's tags;
2. permission: the key may use the route it asks for (403 otherwise);
3. the route's ``max_tokens`` guard: a default when the request names none, a cap (reject or
   clip) when it asks for more;
4. limits and budgets (``engine/limits/quota.py``) of the key, its team, the user, the tags, the
   route and the session.

With access control off (``access.enabled: false``) step 1 and 2 are skipped; route and
session limits still apply. ``settle`` runs when the request ends, success or not.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from breakwater.core.errors import InvalidRequest
from breakwater.core.keys import Team, VirtualKey
from breakwater.core.limits import to_nano_ceiling
from breakwater.core.pricing import Price, cost
from breakwater.core.regions import narrow
from breakwater.core.tokens import TextCounter, estimate_prompt_tokens
from breakwater.core.types import ChatRequest, EmbeddingRequest, Usage
from breakwater.engine.access.directory import Directory
from breakwater.engine.context import RequestContext
from breakwater.engine.limits.checks import Demand, Scope
from breakwater.engine.limits.quota import Quota
from breakwater.engine.ports import TokenCounters, text_counter
from breakwater.engine.routing import Deployment, Route, Router
from breakwater.providers.openai_moderations import ModerationRequest

#: output tokens reserved for a request that does not say how many it may generate: give the
#: route a ``max_tokens`` default to reserve (and bound) less
DEFAULT_OUTPUT_RESERVE = 4096

PriceOf = Callable[[Deployment], Price | None]


class Gatekeeper:
    """Authentication, permission, the ``max_tokens`` guard and limits for one app.

    Args:
        router: resolves the model a request names to its route.
        quota: limits and budgets.
        directory: the keys (``None``: access control off).
        tokens: the tokenizers, for token estimates (``None``: about four bytes a token).
        price_of: a deployment's price (``None`` when unknown), for budget reservations.
    """

    def __init__(
        self,
        router: Router,
        quota: Quota,
        directory: Directory | None,
        *,
        tokens: TokenCounters | None = None,
        price_of: PriceOf | None = None,
    ) -> None:
        self.router = router
        self.quota = quota
        self.directory = directory
        self._tokens = tokens
        self._price_of = price_of

    def authenticate(self, ctx: RequestContext) -> None:
        """Check the request's credential and record who is calling on ``ctx``.

        Raises:
            AuthenticationFailed: 401, the key is missing, unknown or no longer valid.
            BackendUnavailable: the keys are not loaded yet.
        """
        caller = ctx.caller
        credential, caller.credential = caller.credential, None
        if self.directory is None:
            return
        self._identified(ctx, *self.directory.authenticate(credential))

    def identify(self, ctx: RequestContext, key_id: str) -> None:
        """Record on ``ctx`` that the key ``key_id`` is calling (work done on its behalf later: a
        batch's lines); ``authenticate``'s checks, by id instead of credential.

        Raises:
            AuthenticationFailed: the key is unknown or no longer valid.
        """
        if self.directory is not None:
            self._identified(ctx, *self.directory.authenticate_id(key_id))

    def _identified(self, ctx: RequestContext, key: VirtualKey, team: Team | None) -> None:
        caller = ctx.caller
        caller.key, caller.team, caller.key_id = key, team, key.id
        if key.user:
            caller.user = key.user
        if key.tags:
            caller.tags = {**caller.tags, **key.tags}  # the key's own tags cannot be overridden by the caller

    def allowed(self, ctx: RequestContext, name: str) -> bool:
        """May the request's key list or use the route ``name``?"""
        key = ctx.caller.key
        return key is None or key.allows_route(name)

    async def admit_chat(self, ctx: RequestContext, request: ChatRequest) -> None:
        """Permission, the ``max_tokens`` guard and limits for a chat request (which the guard may change)."""
        route = self._route(ctx, request.model)
        guard = route.max_tokens
        if guard is not None:
            _guard_max_tokens(request, guard.default, guard.cap, guard.over_cap)
        if ctx.caller.user is None and request.user:
            ctx.caller.user = request.user
        await self._admit(ctx, route, lambda: self._chat_demand(route, request))

    async def admit_embeddings(self, ctx: RequestContext, request: EmbeddingRequest) -> None:
        """Permission and limits for an embeddings request."""
        route = self._route(ctx, request.model)
        if ctx.caller.user is None and request.user:
            ctx.caller.user = request.user
        await self._admit(ctx, route, lambda: self._embeddings_demand(route, request))

    async def admit_moderations(self, ctx: RequestContext, request: ModerationRequest) -> None:
        """Permission and limits for a moderation: a request; its texts' tokens reserved while it runs (it uses none)."""
        route = self._route(ctx, request.model)
        await self._admit(ctx, route, lambda: self._moderations_demand(route, request))

    def settle(self, ctx: RequestContext, tokens: int, cost_usd: Decimal | None) -> None:
        """The request ended: replace its reservations with what it used."""
        if ctx.limits.ticket is not None:
            self.quota.settle(ctx, tokens, cost_usd)

    def _route(self, ctx: RequestContext, model: str) -> Route:
        route = self.router.resolve(model)
        key, team = ctx.caller.key, ctx.caller.team
        if key is not None and self.directory is not None:
            self.directory.check_route(key, route.name)
        # data residency: what the key, its team and the route allow, met once for the request
        ctx.regions = narrow(
            key.regions or None if key is not None else None,
            team.regions or None if team is not None else None,
            route.allowed_regions,
        )
        return route

    async def _admit(self, ctx: RequestContext, route: Route, demand: Callable[[], Demand]) -> None:
        scopes = self._scopes(ctx, route)
        caller, session = ctx.caller, None
        if caller.session is not None:
            session = f"{caller.key_id or caller.user or '-'}:{caller.session}"
        if not scopes and session is None:
            return
        spend_capped = session is not None and self.quota.sessions.max_spend_usd is not None
        if self._tokens is not None and (spend_capped or any(s.limits.counts_tokens for s in scopes)):
            # a reservation counts this request's tokens: exactly, so the first such request
            # waits once for its encoding to load (in a thread) rather than count by bytes
            target = route.deployments[0].target
            await self._tokens.load(target.provider, target.model)
        hold = route.deadline_s if route.deadline_s is not None else route.deployments[0].timeouts.total
        await self.quota.admit(ctx, scopes, demand, session=session, hold_s=hold)

    def _scopes(self, ctx: RequestContext, route: Route) -> list[Scope]:
        scopes: list[Scope] = []
        caller, directory = ctx.caller, self.directory
        key, team = caller.key, caller.team
        if key is not None and not key.limits.empty:
            scopes.append(Scope("key", key.id, f"key {key.prefix}", key.limits))
        if team is not None and not team.limits.empty:
            scopes.append(Scope("team", team.name, f"team '{team.name}'", team.limits))
        if directory is not None:
            if caller.user:
                found = directory.user_limits(caller.user)
                if found is not None:
                    scopes.append(Scope("user", found[0], f"user '{found[0]}'", found[1]))
            for subject, limits in directory.tag_limits(caller.tags):
                scopes.append(Scope("tag", subject, f"tag '{subject}'", limits))
        if route.limits is not None:
            scopes.append(Scope("route", route.limits_name, f"model '{route.limits_name}'", route.limits))
        return scopes

    # --- estimates ------------------------------------------------------------------------------

    def _counter(self, route: Route) -> TextCounter:
        target = route.deployments[0].target
        return text_counter(self._tokens, target.provider, target.model)

    def _chat_demand(self, route: Route, request: ChatRequest) -> Demand:
        prompt = estimate_prompt_tokens(request, self._counter(route))
        output = request.max_tokens if request.max_tokens is not None else DEFAULT_OUTPUT_RESERVE
        return Demand(prompt + output, self._max_cost(route, Usage(input_tokens=prompt, output_tokens=output)))

    def _embeddings_demand(self, route: Route, request: EmbeddingRequest) -> Demand:
        count = self._counter(route)
        prompt = sum(count(text) for text in request.inputs) + sum(map(len, request.token_inputs or ()))
        return Demand(prompt, self._max_cost(route, Usage(input_tokens=prompt)))

    def _moderations_demand(self, route: Route, request: ModerationRequest) -> Demand:
        count = self._counter(route)
        return Demand(sum(count(text) for text in request.texts if text), 0)

    def _max_cost(self, route: Route, usage: Usage) -> int:
        """The cost of ``usage`` at the dearest deployment of the route, in nano-dollars (0: no price known)."""
        if self._price_of is None:
            return 0
        dearest = Decimal(0)
        for deployment in route.deployments:
            price = self._price_of(deployment)
            if price is not None:
                dearest = max(dearest, cost(usage, price).total)
        return to_nano_ceiling(dearest)


def _guard_max_tokens(request: ChatRequest, default: int | None, cap: int | None, over_cap: str) -> None:
    """Give ``request`` the route's default ``max_tokens``, or hold it to the cap."""
    asked = request.max_tokens
    if asked is None:
        if default is not None:
            _set_max_tokens(request, default)
        return
    if cap is not None and asked > cap:
        if over_cap == "reject":
            raise InvalidRequest(
                f"max_tokens {asked} is over the limit of {cap} for model '{request.model}'",
                param="max_tokens",
                code="max_tokens_over_cap",
            )
        _set_max_tokens(request, cap)


def _set_max_tokens(request: ChatRequest, value: int) -> None:
    request.max_tokens = value
    raw = request.raw
    if raw is None:
        return
    # the client's body travels as it is on the OpenAI fast path: change the field it used
    names = [n for n in ("max_completion_tokens", "max_tokens") if raw.get(n) is not None]
    for name in names or ["max_completion_tokens"]:
        raw[name] = value

"""What the traffic the ledger recorded would have cost under other choices (``breakwater costs
whatif``, docs/costs.md): pure arithmetic over token totals, no I/O.

Each scenario reprices the slices in its scope (routes, upstream models, a tag's value) and
says where its figure comes from. What the slices cost *now* is what the ledger recorded
(tiers and all); a scenario's cost is:

- ``Reprice`` (another model): the slices' token sums at the other model's rates;
- ``AnswerCache`` (a cache hit rate): that share of the requests answered from the cache, at 0;
- ``PromptCache`` (a prompt-cache share): that share of the uncached input tokens read from the
  provider's prompt cache, at its cached rate instead of its input rate;
- ``Batch`` (batch for a tag): the provider's batch price (``core/batch_prices.py``);
- ``Move`` (a routing share): that share at another model's rates, the rest as recorded.

Token sums are priced at base rates: a tier (a price for prompts over 200k tokens) applies per
request, and sums do not say which requests crossed it. Token counts are replayed as they were:
another model's tokenizer would count the same text somewhat differently.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Protocol

from breakwater.core.batch_prices import batch_price
from breakwater.core.pricing import MILLION, Price, cost
from breakwater.core.types import Usage

#: a month, for every monthly figure: 30 days
MONTH_S = 30 * 86_400
_ZERO = Decimal(0)


class Totals(Protocol):
    """A slice of the ledger's traffic (``observability/ledger/token_totals.Slice``)."""

    @property
    def route(self) -> str: ...
    @property
    def deployment(self) -> str: ...
    @property
    def provider(self) -> str: ...
    @property
    def model(self) -> str: ...
    @property
    def tag(self) -> str | None: ...
    @property
    def requests(self) -> int: ...
    @property
    def input_tokens(self) -> int: ...
    @property
    def cached_input_tokens(self) -> int: ...
    @property
    def cache_write_tokens(self) -> int: ...
    @property
    def output_tokens(self) -> int: ...
    @property
    def reasoning_tokens(self) -> int: ...
    @property
    def cost_usd(self) -> Decimal: ...
    @property
    def unpriced(self) -> int: ...


#: a slice's current price and the host whose list it is on (``None``s when unknown)
PriceOf = Callable[[Totals], tuple[Price | None, str | None]]


@dataclass(frozen=True, slots=True)
class Scope:
    """Which slices a scenario changes: all of them, or those of some routes, models, a tag's value."""

    routes: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    #: ``(key, value)``: only requests tagged so (the totals must be split by ``key``)
    tag: tuple[str, str] | None = None

    def holds(self, s: Totals) -> bool:
        return (
            (not self.routes or s.route in self.routes)
            and (not self.models or s.model in self.models)
            and (self.tag is None or s.tag == self.tag[1])
        )

    def __str__(self) -> str:
        parts = [f"route {', '.join(self.routes)}"] if self.routes else []
        if self.models:
            parts.append(f"model {', '.join(self.models)}")
        if self.tag is not None:
            parts.append(f"tag {self.tag[0]}={self.tag[1]}")
        return "; ".join(parts) or "all traffic"


@dataclass(frozen=True, slots=True)
class Target:
    """A model to price traffic at: its label (``host/model`` or a deployment) and its price."""

    label: str
    price: Price
    source: str


@dataclass(frozen=True, slots=True)
class Reprice:
    target: Target

    def describe(self) -> str:
        return f"priced as {self.target.label}"

    def cost(self, s: Totals, price_of: PriceOf) -> tuple[Decimal | None, str]:
        return at_base_rates(s, self.target.price), self.target.source


@dataclass(frozen=True, slots=True)
class AnswerCache:
    rate: float

    def describe(self) -> str:
        return f"answer cache hit rate {self.rate:.0%}"

    def cost(self, s: Totals, price_of: PriceOf) -> tuple[Decimal | None, str]:
        return s.cost_usd * (1 - Decimal(str(self.rate))), "an answer served from the cache costs 0"


@dataclass(frozen=True, slots=True)
class PromptCache:
    share: float

    def describe(self) -> str:
        return f"prompt cache reads {self.share:.0%} of uncached input"

    def cost(self, s: Totals, price_of: PriceOf) -> tuple[Decimal | None, str]:
        price, _ = price_of(s)
        if price is None:
            return None, "no known price"
        cached_rate = price.input if price.cached_input is None else price.cached_input
        uncached = max(s.input_tokens - s.cached_input_tokens - s.cache_write_tokens, 0)
        saved = Decimal(str(self.share)) * uncached * (price.input - cached_rate) / MILLION
        return s.cost_usd - saved, "the model's cached-input rate (genai-prices or the deployment's price)"


@dataclass(frozen=True, slots=True)
class Batch:
    def describe(self) -> str:
        return "sent through the batch API"

    def cost(self, s: Totals, price_of: PriceOf) -> tuple[Decimal | None, str]:
        price, host = price_of(s)
        batch = batch_price(host, s.model, price)
        if batch is None:
            return s.cost_usd, f"no batch price known for {host or 'this provider'}: unchanged"
        if batch.share is not None:
            return s.cost_usd * batch.share, batch.source
        return at_base_rates(s, batch.price), batch.source


@dataclass(frozen=True, slots=True)
class Move:
    share: float
    target: Target

    def describe(self) -> str:
        return f"{self.share:.0%} moved to {self.target.label}"

    def cost(self, s: Totals, price_of: PriceOf) -> tuple[Decimal | None, str]:
        share = Decimal(str(self.share))
        return s.cost_usd * (1 - share) + share * at_base_rates(s, self.target.price), self.target.source


Change = Reprice | AnswerCache | PromptCache | Batch | Move


@dataclass(frozen=True, slots=True)
class Scenario:
    change: Change
    scope: Scope = Scope()


@dataclass(frozen=True, slots=True)
class Outcome:
    """A scenario over the window: what its slices cost, and would have; ``monthly`` scales to 30 days."""

    scenario: str
    scope: str
    requests: int
    tokens: int
    current_usd: Decimal
    scenario_usd: Decimal
    #: where the scenario's prices come from (each distinct source once)
    sources: tuple[str, ...]
    #: requests recorded without a cost, or whose price is unknown: left at their recorded cost
    unpriced: int
    #: window length -> 30 days
    factor: Decimal

    @property
    def difference_usd(self) -> Decimal:
        return self.scenario_usd - self.current_usd

    def monthly(self, value: Decimal) -> Decimal:
        return value * self.factor


def at_base_rates(s: Totals, price: Price) -> Decimal:
    """The slice's token sums at ``price``'s base rates (see the module docstring on tiers)."""
    usage = Usage(s.input_tokens, s.output_tokens, s.cached_input_tokens, s.cache_write_tokens, s.reasoning_tokens)
    return cost(usage, replace(price, tiers=())).total


def evaluate(scenario: Scenario, slices: Sequence[Totals], price_of: PriceOf, window_s: float) -> Outcome:
    """``scenario`` over ``slices`` (a window of ``window_s`` seconds)."""
    if window_s <= 0:
        raise ValueError("the window must be longer than 0 seconds")
    requests = tokens = unpriced = 0
    current = changed = _ZERO
    sources: dict[str, None] = {}
    for s in slices:
        if not scenario.scope.holds(s):
            continue
        requests += s.requests
        tokens += s.input_tokens + s.output_tokens
        current += s.cost_usd
        if s.unpriced == s.requests:  # nothing recorded to compare with: left as it is, and said
            unpriced += s.requests
            changed += s.cost_usd
            continue
        value, source = scenario.change.cost(s, price_of)
        unpriced += s.unpriced
        if value is None:
            unpriced += s.requests - s.unpriced
            value = s.cost_usd
        changed += value
        sources[source] = None
    factor = Decimal(MONTH_S) / Decimal(str(window_s))
    return Outcome(
        scenario.change.describe(),
        str(scenario.scope),
        requests,
        tokens,
        current,
        changed,
        tuple(sources),
        unpriced,
        factor,
    )

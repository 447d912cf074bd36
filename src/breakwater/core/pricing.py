"""What a request cost, from its token usage and a price list, in exact ``Decimal`` dollars.

Prices are USD per million tokens, the unit every provider publishes. Usage follows the
normalised meaning of ``breakwater.core.types.Usage``: ``input_tokens`` counts *every* prompt
token, and the cache reads (``cached_input_tokens``) and cache writes
(``cache_creation_input_tokens``) are subsets of it; ``output_tokens`` counts every generated
token, and ``reasoning_tokens`` is a subset of it. So each token is billed exactly once:

    uncached = input - cached - cache_write          (never below 0)
    cost     = uncached * input_rate + cached * cached_input_rate + cache_write * cache_write_rate
             + (output - reasoning) * output_rate + reasoning * reasoning_rate
    (all divided by 1_000_000)

Nothing is rounded: money is only rounded where it is shown or billed, never in the sums.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from breakwater.core.types import Usage

__all__ = ["MILLION", "Cost", "Price", "cost"]

MILLION = Decimal(1_000_000)


@dataclass(frozen=True, slots=True)
class Price:
    """USD per million tokens.

    ``None`` rates fall back: ``cached_input`` and ``cache_write`` to ``input``, ``reasoning`` to
    ``output``. ``tiers`` are ``(threshold, price)`` pairs: when the request's total input tokens
    (cache reads and writes included) *exceed* a threshold, that tier's price applies to the whole
    request, every kind of token, not just the tokens above it (Gemini 2.5 Pro above 200k prompt
    tokens, Claude Sonnet 4.5 above 200k). The highest threshold exceeded wins; a tier's own
    ``tiers`` are ignored.
    """

    input: Decimal
    output: Decimal
    cached_input: Decimal | None = None
    cache_write: Decimal | None = None
    reasoning: Decimal | None = None
    tiers: tuple[tuple[int, Price], ...] = ()

    def for_input_tokens(self, input_tokens: int) -> Price:
        """The price that applies to a request with this many input tokens (a tier, or self)."""
        chosen = self
        best = -1
        for threshold, tier in self.tiers:
            if input_tokens > threshold and threshold > best:
                chosen, best = tier, threshold
        return chosen


@dataclass(frozen=True, slots=True)
class Cost:
    """USD, unrounded. ``input`` is the uncached prompt tokens only; ``output`` includes reasoning."""

    input: Decimal
    cached_input: Decimal
    cache_write: Decimal
    output: Decimal
    total: Decimal


def cost(usage: Usage, price: Price) -> Cost:
    """What ``usage`` costs at ``price`` (the tier for its input size, when ``price`` has tiers)."""
    p = price.for_input_tokens(usage.input_tokens)
    cached = max(usage.cached_input_tokens, 0)
    written = max(usage.cache_creation_input_tokens, 0)
    uncached = max(usage.input_tokens - cached - written, 0)
    reasoning = max(usage.reasoning_tokens, 0)
    visible = max(usage.output_tokens - reasoning, 0)

    cached_rate = p.input if p.cached_input is None else p.cached_input
    write_rate = p.input if p.cache_write is None else p.cache_write
    reasoning_rate = p.output if p.reasoning is None else p.reasoning

    input_cost = uncached * p.input / MILLION
    cached_cost = cached * cached_rate / MILLION
    write_cost = written * write_rate / MILLION
    output_cost = (visible * p.output + reasoning * reasoning_rate) / MILLION
    total = input_cost + cached_cost + write_cost + output_cost
    return Cost(input=input_cost, cached_input=cached_cost, cache_write=write_cost, output=output_cost, total=total)

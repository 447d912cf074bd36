"""What a model costs through its provider's batch API, and where that figure comes from.

Batch APIs answer within a day at a discount on every kind of token (input, cache reads and
writes, output). The discount is a fact of each provider's price page, kept here as data:

| host | discount | source |
| --- | --- | --- |
| openai, azure | 50% | OpenAI Batch API; Azure OpenAI global batch |
| anthropic | 50% | Message Batches API (genai-prices' note on Anthropic says the same) |
| gemini, google, vertex | 50% | Gemini API Batch Mode; Vertex AI batch prediction |
| mistral | 50% | Mistral batch API (genai-prices' note on Mistral says the same) |
| bedrock | 50% | Bedrock batch inference (for the models that offer it) |

A model listed by genai-prices with a batch row of its own (OpenRouter's ``<model>:batch``) is
priced at that row instead. Any other host has no batch price: ``None``, never a guess.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from breakwater.core.prices import lookup
from breakwater.core.pricing import Price

HALF = Decimal("0.5")

#: host -> (share of the standard price paid, where it is published)
BATCH_DISCOUNTS: dict[str, tuple[Decimal, str]] = {
    "openai": (HALF, "OpenAI Batch API: 50% of standard rates"),
    "azure": (HALF, "Azure OpenAI global batch: 50% of standard rates"),
    "anthropic": (HALF, "Anthropic Message Batches API: 50% of standard rates"),
    "gemini": (HALF, "Gemini API Batch Mode: 50% of standard rates"),
    "google": (HALF, "Gemini API Batch Mode: 50% of standard rates"),
    "vertex": (HALF, "Vertex AI batch prediction: 50% of standard rates"),
    "mistral": (HALF, "Mistral batch API: 50% of standard rates"),
    "bedrock": (HALF, "Amazon Bedrock batch inference: 50% of on-demand rates"),
}


@dataclass(frozen=True, slots=True)
class BatchPrice:
    """A model's batch price and where it comes from (shown beside every figure made with it)."""

    price: Price
    source: str
    #: the share of the standard price paid, when the batch price is a discount on it
    share: Decimal | None = None


def scaled(price: Price, share: Decimal) -> Price:
    """``price`` with every rate, and every tier's, multiplied by ``share``."""

    def times(rate: Decimal | None) -> Decimal | None:
        return None if rate is None else rate * share

    return Price(
        input=price.input * share,
        output=price.output * share,
        cached_input=times(price.cached_input),
        cache_write=times(price.cache_write),
        reasoning=times(price.reasoning),
        tiers=tuple((threshold, scaled(tier, share)) for threshold, tier in price.tiers),
    )


def batch_price(host: str | None, model: str, standard: Price | None) -> BatchPrice | None:
    """The batch price of ``model`` on ``host`` (``standard``: its price off batch), or ``None``."""
    own = lookup(host, f"{model}:batch") if host else None
    if own is not None:
        return BatchPrice(own, f"genai-prices: {host} {model}:batch")
    known = BATCH_DISCOUNTS.get((host or "").lower())
    if known is None or standard is None:
        return None
    share, source = known
    return BatchPrice(scaled(standard, share), source, share)

"""Batch prices (core/batch_prices.py): a provider's published discount, a batch row of the price
list, and no figure at all where neither is known."""

from __future__ import annotations

from decimal import Decimal

from breakwater.core.batch_prices import batch_price, scaled
from breakwater.core.prices import lookup
from breakwater.core.pricing import Price

STANDARD = Price(
    Decimal(2), Decimal(8), cached_input=Decimal("0.5"), tiers=((200_000, Price(Decimal(4), Decimal(16))),)
)


def test_a_discounted_host_pays_half_of_every_rate_and_tier() -> None:
    """OpenAI's batch price is half of each rate, tiers included; the source names the batch API."""
    batch = batch_price("openai", "any-model", STANDARD)
    assert batch is not None and batch.share == Decimal("0.5") and "OpenAI Batch API" in batch.source
    assert batch.price == scaled(STANDARD, Decimal("0.5"))
    assert (batch.price.input, batch.price.output, batch.price.cached_input) == (1, 4, Decimal("0.25"))
    assert batch.price.tiers[0][1].input == 2


def test_a_batch_row_of_the_price_list_wins() -> None:
    """OpenRouter lists ``<model>:batch`` rows: that row's price, named as the source."""
    model = "anthropic/claude-haiku-4.5"
    standard = lookup("openrouter", model)
    batch = batch_price("openrouter", model, standard)
    if lookup("openrouter", f"{model}:batch") is None:  # (a price list without that row)
        assert batch is None
        return
    assert batch is not None and batch.share is None and batch.source.endswith(f"{model}:batch")


def test_no_batch_price_is_guessed() -> None:
    """A self-hosted server, an unknown host, or no standard price to discount: ``None``."""
    assert batch_price(None, "m", STANDARD) is None
    assert batch_price("vllm", "m", STANDARD) is None
    assert batch_price("openai", "m", None) is None

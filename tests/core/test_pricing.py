"""Cost from usage: every token billed once, at its rate, in exact Decimal dollars.

Expected values are computed by hand in the comments (rates are USD per million tokens).
"""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from pydantic import ValidationError

from breakwater.core.config import Price as PriceOverride
from breakwater.core.pricing import Cost, Price, cost
from breakwater.core.types import Usage

GPT_4O = Price(input=D("2.50"), output=D("10.00"), cached_input=D("1.25"))
SONNET = Price(input=D("3"), output=D("15"), cached_input=D("0.30"), cache_write=D("3.75"))
GEMINI_25_PRO = Price(
    input=D("1.25"),
    output=D("10"),
    cached_input=D("0.125"),
    tiers=((200_000, Price(input=D("2.50"), output=D("15"), cached_input=D("0.25"))),),
)


def test_plain() -> None:
    # 1000 in * 2.50 = 2500 -> 0.0025; 500 out * 10 = 5000 -> 0.005; total 0.0075
    c = cost(Usage(input_tokens=1000, output_tokens=500), GPT_4O)
    assert c == Cost(input=D("0.0025"), cached_input=D(0), cache_write=D(0), output=D("0.005"), total=D("0.0075"))


def test_streamed_usage_is_the_same_math() -> None:
    # a stream's final usage chunk carries the same totals: 1234 in, 567 out
    # 1234 * 2.50 = 3085 -> 0.003085; 567 * 10 = 5670 -> 0.00567; total 0.008755
    streamed = Usage(input_tokens=1234, output_tokens=567)
    whole = Usage(input_tokens=1234, output_tokens=567)
    assert cost(streamed, GPT_4O) == cost(whole, GPT_4O)
    assert cost(streamed, GPT_4O).total == D("0.008755")


def test_openai_cached_tokens_are_a_subset_of_input() -> None:
    # 10_000 prompt tokens of which 8_000 cached: 2_000 uncached
    # 2_000 * 2.50 = 5_000 -> 0.005; 8_000 * 1.25 = 10_000 -> 0.01; 300 * 10 = 3_000 -> 0.003
    c = cost(Usage(input_tokens=10_000, output_tokens=300, cached_input_tokens=8_000), GPT_4O)
    assert c.input == D("0.005")
    assert c.cached_input == D("0.01")
    assert c.cache_write == D(0)
    assert c.output == D("0.003")
    assert c.total == D("0.018")


def test_anthropic_cache_read_and_creation() -> None:
    # normalised usage: input 12_000 = 1_000 uncached + 10_000 cache read + 1_000 cache write
    # 1_000 * 3 = 3_000 -> 0.003; 10_000 * 0.30 = 3_000 -> 0.003; 1_000 * 3.75 = 3_750 -> 0.00375
    # 200 out * 15 = 3_000 -> 0.003; total 0.003 + 0.003 + 0.00375 + 0.003 = 0.01275
    usage = Usage(input_tokens=12_000, output_tokens=200, cached_input_tokens=10_000, cache_creation_input_tokens=1_000)
    assert cost(usage, SONNET) == Cost(
        input=D("0.003"), cached_input=D("0.003"), cache_write=D("0.00375"), output=D("0.003"), total=D("0.01275")
    )


def test_unset_cache_rates_fall_back_to_input() -> None:
    # no cached/write rates: all 1_000 prompt tokens at 2 -> 0.002, split 400/500/100
    price = Price(input=D("2"), output=D("4"))
    c = cost(Usage(input_tokens=1_000, cached_input_tokens=500, cache_creation_input_tokens=100), price)
    assert (c.input, c.cached_input, c.cache_write) == (D("0.0008"), D("0.001"), D("0.0002"))
    assert c.total == D("0.002")


def test_reasoning_tokens_are_a_subset_of_output() -> None:
    # 1_000 out of which 800 reasoning; reasoning rate unset -> output rate
    # 100 in * 2.50 = 250 -> 0.00025; 1_000 * 10 = 10_000 -> 0.01; total 0.01025
    usage = Usage(input_tokens=100, output_tokens=1_000, reasoning_tokens=800)
    assert cost(usage, GPT_4O).output == D("0.01")
    assert cost(usage, GPT_4O).total == D("0.01025")
    # with a reasoning rate of 3: 200 * 8 = 1_600 and 800 * 3 = 2_400 -> 4_000 -> 0.004
    priced = Price(input=D("2"), output=D("8"), reasoning=D("3"))
    assert cost(usage, priced).output == D("0.004")
    # 100 * 2 = 200 -> 0.0002; total 0.0042
    assert cost(usage, priced).total == D("0.0042")


def test_tier_applies_to_the_whole_request_above_the_threshold() -> None:
    # 300_000 in (100_000 cached) is above 200_000: all at the tier's rates
    # 200_000 * 2.50 = 500_000 -> 0.5; 100_000 * 0.25 = 25_000 -> 0.025; 2_000 * 15 = 30_000 -> 0.03
    big = Usage(input_tokens=300_000, output_tokens=2_000, cached_input_tokens=100_000)
    assert cost(big, GEMINI_25_PRO) == Cost(
        input=D("0.5"), cached_input=D("0.025"), cache_write=D(0), output=D("0.03"), total=D("0.555")
    )
    # exactly 200_000 is not above the threshold: base rates, 200_000 * 1.25 = 0.25, 2_000 * 10 = 0.02
    edge = Usage(input_tokens=200_000, output_tokens=2_000)
    assert cost(edge, GEMINI_25_PRO).total == D("0.27")
    # 200_001: tier, 200_001 * 2.50 = 500_002.5 -> 0.5000025; + 0.03
    assert cost(Usage(input_tokens=200_001, output_tokens=2_000), GEMINI_25_PRO).total == D("0.5300025")


def test_highest_exceeded_tier_wins_whatever_the_order() -> None:
    cheap, dear = Price(input=D("2"), output=D("0")), Price(input=D("3"), output=D("0"))
    price = Price(input=D("1"), output=D("0"), tiers=((1_000, dear), (10, cheap)))
    assert cost(Usage(input_tokens=5), price).total == D("0.000005")  # 5 * 1
    assert cost(Usage(input_tokens=100), price).total == D("0.0002")  # 100 * 2
    assert cost(Usage(input_tokens=2_000), price).total == D("0.006")  # 2_000 * 3


def test_inconsistent_counts_never_go_negative() -> None:
    # cached > input (a provider bug): uncached clamps to 0; reasoning > output: visible clamps to 0
    c = cost(Usage(input_tokens=10, cached_input_tokens=50, output_tokens=1, reasoning_tokens=5), GPT_4O)
    assert c.input == D(0)
    assert c.cached_input == D("0.0000625")  # 50 * 1.25
    assert c.output == D("0.00005")  # 5 * 10
    assert c.total == D("0.0001125")


def test_full_precision_no_rounding() -> None:
    # 1 token at 0.075 -> 0.000000075, kept exactly
    assert cost(Usage(input_tokens=1), Price(input=D("0.075"), output=D("0.3"))).total == D("0.000000075")


def test_zero_usage_costs_nothing() -> None:
    assert cost(Usage(), SONNET).total == 0


def test_price_override_config() -> None:
    override = PriceOverride.model_validate(
        {"input_per_mtok": "0.2", "output_per_mtok": 0.6, "reasoning_per_mtok": "1"}
    )
    assert override.to_price() == Price(input=D("0.2"), output=D("0.6"), reasoning=D("1"))
    with pytest.raises(ValidationError):
        PriceOverride.model_validate({"input_per_mtok": 1, "output_per_mtok": 1, "typo_per_mtok": 1})
    with pytest.raises(ValidationError):
        PriceOverride.model_validate({"input_per_mtok": -1, "output_per_mtok": 1})

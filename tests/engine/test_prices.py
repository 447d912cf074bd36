"""PriceBook: overrides first, then the bundled genai-prices list (no network), never a guess.

The list prices asserted here are genai-prices 0.2.3's bundled data; a price change upstream
fails these tests on purpose, so the change is seen.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from decimal import Decimal as D

import genai_prices
import pytest
from genai_prices.types import ModelPrice, Tier, TieredPrices

from breakwater.core.config import Price as PriceOverride
from breakwater.core.prices import FREE, MOCK_HOST, PriceBook, lookup, price_from_model_price
from breakwater.core.pricing import Price, cost
from breakwater.core.types import Usage

AT = datetime(2026, 1, 1, tzinfo=UTC)


def test_openai_gpt_4o_list_price() -> None:
    book = PriceBook(at=AT)
    price = book.price_for("gpt4o", "openai", "gpt-4o")
    assert price == Price(input=D("2.5"), output=D("10"), cached_input=D("1.25"))
    # dated snapshot names resolve to the same model
    assert lookup("openai", "gpt-4o-2024-08-06", AT) == price
    # 10_000 in, 8_000 cached, 300 out: 2_000 * 2.5 + 8_000 * 1.25 + 300 * 10 = 5_000 + 10_000 + 3_000 -> 0.018
    assert price is not None
    assert cost(Usage(input_tokens=10_000, output_tokens=300, cached_input_tokens=8_000), price).total == D("0.018")


def test_anthropic_sonnet_cache_read_and_write() -> None:
    price = PriceBook(at=AT).price_for("sonnet", "anthropic", "claude-sonnet-4-20250514")
    assert price == Price(input=D("3"), output=D("15"), cached_input=D("0.3"), cache_write=D("3.75"))
    # 1_000 uncached * 3 + 10_000 read * 0.3 + 1_000 written * 3.75 + 200 out * 15
    # = 3_000 + 3_000 + 3_750 + 3_000 = 12_750 -> 0.01275
    usage = Usage(input_tokens=12_000, output_tokens=200, cached_input_tokens=10_000, cache_creation_input_tokens=1_000)
    assert cost(usage, price).total == D("0.01275")


def test_gemini_25_pro_tier_above_200k() -> None:
    price = PriceBook(at=AT).price_for("pro", "gemini", "gemini-2.5-pro")
    assert price == Price(
        input=D("1.25"),
        output=D("10"),
        cached_input=D("0.125"),
        tiers=((200_000, Price(input=D("2.5"), output=D("15"), cached_input=D("0.25"))),),
    )
    # 300_000 in (100_000 cached), 2_000 out, above 200k: 200_000 * 2.5 + 100_000 * 0.25 + 2_000 * 15
    # = 500_000 + 25_000 + 30_000 = 555_000 -> 0.555
    usage = Usage(input_tokens=300_000, output_tokens=2_000, cached_input_tokens=100_000)
    assert cost(usage, price).total == D("0.555")
    # and genai-prices itself agrees (its input_tokens also include cache reads)
    theirs = genai_prices.calc_price(
        genai_prices.Usage(input_tokens=300_000, cache_read_tokens=100_000, output_tokens=2_000),
        "gemini-2.5-pro",
        provider_id="google",
        genai_request_timestamp=AT,
    )
    assert theirs.total_price == D("0.555")


def test_reasoning_rate_is_carried_over() -> None:
    # perplexity sonar-deep-research bills reasoning tokens at their own rate
    assert lookup("perplexity", "sonar-deep-research", AT) == Price(input=D("2"), output=D("8"), reasoning=D("3"))


def test_per_rate_tiers_become_whole_price_tiers() -> None:
    # input tiers at 100k and 200k, output only at 200k: starts {100k, 200k}
    mp = ModelPrice(
        input_mtok=TieredPrices(
            base=D("1"), tiers=[Tier(start=200_000, price=D("3")), Tier(start=100_000, price=D("2"))]
        ),
        output_mtok=TieredPrices(base=D("10"), tiers=[Tier(start=200_000, price=D("20"))]),
        cache_read_mtok=D("0.1"),
    )
    assert price_from_model_price(mp) == Price(
        input=D("1"),
        output=D("10"),
        cached_input=D("0.1"),
        tiers=(
            (100_000, Price(input=D("2"), output=D("10"), cached_input=D("0.1"))),
            (200_000, Price(input=D("3"), output=D("20"), cached_input=D("0.1"))),
        ),
    )
    assert price_from_model_price(ModelPrice(output_mtok=D("1"))) is None  # no token input rate


def test_override_prices_a_self_hosted_model() -> None:
    local = PriceOverride(input_per_mtok=D("0.10"), output_per_mtok=D("0.40")).to_price()
    book = PriceBook({"llama-local": local})
    price = book.price_for("llama-local", "vllm", "meta-llama/Llama-3.1-8B-Instruct")
    assert price is local
    # 50_000 * 0.10 = 5_000 -> 0.005; 10_000 * 0.40 = 4_000 -> 0.004; total 0.009
    assert cost(Usage(input_tokens=50_000, output_tokens=10_000), price).total == D("0.009")
    assert not book.unknown


def test_override_beats_the_list_price() -> None:
    negotiated = Price(input=D("2"), output=D("8"))
    book = PriceBook({"gpt4o": negotiated}, at=AT)
    assert book.price_for("gpt4o", "openai", "gpt-4o") is negotiated
    assert book.price_for("other", "openai", "gpt-4o") == Price(input=D("2.5"), output=D("10"), cached_input=D("1.25"))


def test_unknown_model_is_none_counted_and_warned_once(caplog: pytest.LogCaptureFixture) -> None:
    book = PriceBook(at=AT)
    with caplog.at_level(logging.WARNING, logger="breakwater.prices"):
        assert book.price_for("local", "vllm", "my-finetune") is None  # self-hosted: no list price
        assert book.price_for("local", "vllm", "my-finetune") is None
        assert book.price_for("ghost", "openai", "no-such-model-xyz") is None
    assert book.unknown == {"my-finetune": 2, "no-such-model-xyz": 1}
    warnings = [r for r in caplog.records if r.name == "breakwater.prices"]
    assert len(warnings) == 2
    assert "my-finetune" in warnings[0].getMessage()


def test_lookup_is_done_once_per_deployment(monkeypatch: pytest.MonkeyPatch) -> None:
    import breakwater.core.prices as prices

    calls: list[str] = []
    real = prices.lookup

    def counting(provider: str | None, model: str, at: datetime | None = None) -> Price | None:
        calls.append(model)
        return real(provider, model, at)

    monkeypatch.setattr(prices, "lookup", counting)
    book = PriceBook(at=AT)
    for _ in range(3):
        book.price_for("gpt4o", "openai", "gpt-4o")
        book.price_for("local", "ollama", "llama3")
    assert calls == ["gpt-4o", "llama3"]


def test_azure_and_self_hosted_provider_mapping() -> None:
    assert lookup("azure", "gpt-4o", AT) == Price(input=D("2.5"), output=D("10"), cached_input=D("1.25"))
    for host in ("vllm", "ollama", "custom", None):
        assert lookup(host, "gpt-4o", AT) is None  # a self-hosted "gpt-4o" is not OpenAI's


def test_the_mock_is_free_unless_a_deployment_prices_it() -> None:
    """The mock's models cost 0 (not unpriced, no warning); a deployment's price: still overrides it."""
    assert lookup(MOCK_HOST, "gpt-4o", AT) == FREE == Price(input=D(0), output=D(0))
    own = Price(input=D("1.25"), output=D("10"))
    book = PriceBook({"priced": own}, at=AT)
    assert book.price_for("priced", MOCK_HOST, "mock-gpt") is own
    assert book.price_for("free", MOCK_HOST, "mock-gpt") == FREE
    assert cost(Usage(input_tokens=1000, output_tokens=1000), FREE).total == 0
    assert not book.unknown


def test_a_deployment_announced_at_start_up_is_counted_but_not_warned_again(caplog: pytest.LogCaptureFixture) -> None:
    """After ``warned(name)`` a miss on that deployment is still counted as unpriced, without another log line."""
    book = PriceBook(at=AT)
    book.warned("local-llama")
    with caplog.at_level(logging.WARNING, logger="breakwater.prices"):
        assert book.price_for("local-llama", None, "llama-3") is None
        assert book.price_for("other", None, "llama-3") is None
    assert book.unknown == {"llama-3": 2}
    assert [r.getMessage().split(" (")[0] for r in caplog.records] == ["deployment 'other'"]


@pytest.mark.parametrize(
    ("model", "input_rate", "output_rate"),
    [
        ("anthropic.claude-3-5-sonnet-20240620-v1:0", D(3), D(15)),
        ("us.anthropic.claude-3-7-sonnet-20250219-v1:0", D(3), D(15)),  # a cross-region inference profile
        ("amazon.nova-lite-v1:0", D("0.06"), D("0.24")),
        ("meta.llama3-1-70b-instruct-v1:0", D("0.72"), D("0.72")),
    ],
)
def test_bedrock_model_ids_and_inference_profiles_are_priced(model: str, input_rate: D, output_rate: D) -> None:
    """Bedrock model ids and us./eu. inference profiles get AWS's list prices (genai-prices' aws rows)."""
    price = lookup("bedrock", model, AT)
    assert price is not None
    assert (price.input, price.output) == (input_rate, output_rate)


def test_a_bedrock_arn_is_unpriced() -> None:
    """A provisioned-throughput ARN names no list model: no price is guessed."""
    assert lookup("bedrock", "arn:aws:bedrock:us-east-1:123456789012:provisioned-model/abc123", AT) is None

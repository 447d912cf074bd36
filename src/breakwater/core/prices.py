"""Which price applies to a deployment: a configured override, else the ``genai-prices`` list.

``genai-prices`` (pydantic's price list of LLM APIs) ships its data inside the package, so a
lookup is a local search; this module never calls its ``update_prices`` and never touches the
network. A lookup is done once per deployment and remembered, so the request path pays a dict
read.

A model that is in neither place has no price: ``price_for`` returns ``None``, the miss is
counted in ``PriceBook.unknown`` and logged once per deployment (the app names its configured
deployments' misses at start-up, ``PriceBook.warned``). A price is never guessed (no "nearest
model", no default rate), because a wrong cost is worse than a missing one. The one exception
is the mock provider (``MOCK_HOST``): it costs nothing, so its price is 0 unless a deployment
sets one, and its requests cost 0 rather than being unpriced.

Converting a ``genai_prices`` ``ModelPrice`` into a ``Price``:

* ``input_mtok``, ``output_mtok``, ``cache_read_mtok``, ``cache_write_mtok`` and
  ``output_reasoning_mtok`` map to ``input``, ``output``, ``cached_input``, ``cache_write`` and
  ``reasoning``. An absent cache or reasoning rate stays ``None`` (billed at the input or output
  rate); a model without ``input_mtok`` (priced per image, per character, ...) has no ``Price``;
  a model without ``output_mtok`` (embeddings) gets an output rate of 0, as genai-prices bills it.
* ``cache_write_mtok`` is Anthropic's 5-minute cache write. ``Usage`` does not say which cache
  TTL was written, so 1-hour writes (``cache_write_1h_mtok``) are billed at the 5-minute rate.
* Modality-specific rates (audio, image, video tokens), per-request and per-search fees are not
  represented: ``Usage`` does not count those units.
* Tiers. genai-prices tiers each rate separately (``TieredPrices``: a base rate and ``Tier``
  starts), where ``Price`` switches the whole price at a threshold. Both use the same rule: a
  tier applies to *all* the tokens of a request whose total input tokens exceed its start (a
  "cliff", not marginal brackets), so the conversion is exact: every distinct start becomes a
  ``Price`` tier holding, for each rate, that rate's highest tier starting at or below it.
* Prices that change on a date (``ConditionalPrice``) are resolved at the time of the lookup,
  or at ``PriceBook(at=...)``; a long-running gateway keeps the rate it looked up first.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal

from genai_prices import data_snapshot
from genai_prices.types import ModelPrice, TieredPrices

from breakwater.core.pricing import Price

__all__ = ["FREE", "GENAI_PROVIDERS", "MOCK_HOST", "PriceBook", "deprecated", "lookup", "price_from_model_price"]

log = logging.getLogger("breakwater.prices")

#: the price host of the mock provider (in-process, or a ``breakwater mock`` server)
MOCK_HOST = "mock"
#: what the mock costs
FREE = Price(input=Decimal(0), output=Decimal(0))

#: our provider/host name -> genai-prices provider ids to try, in order. Hosts not listed here
#: (vllm, ollama, tgi, lmstudio, custom) are self-hosted servers: no list price.
GENAI_PROVIDERS: dict[str, tuple[str, ...]] = {
    "openai": ("openai",),
    "anthropic": ("anthropic",),
    "gemini": ("google",),
    "google": ("google",),
    # Vertex AI: Gemini and Claude under the names their vendors use (claude-3-5-sonnet-v2@20241022)
    "vertex": ("google", "anthropic"),
    # Azure OpenAI: its own rows first; a model it lacks is priced as OpenAI prices it
    "azure": ("azure", "openai"),
    "together": ("together",),
    "groq": ("groq",),
    "deepseek": ("deepseek",),
    "mistral": ("mistral",),
    "openrouter": ("openrouter",),
    "fireworks": ("fireworks",),
    "perplexity": ("perplexity",),
    # Amazon Bedrock: its model ids (anthropic.claude-..., amazon.nova-..., meta.llama...) and
    # inference profiles (us./eu./apac./global. prefixes); an ARN (provisioned throughput, an
    # application profile) names no list model, so it is unpriced unless a price is configured
    "bedrock": ("aws",),
}

_Rate = Decimal | TieredPrices | None


def _rate(model_price: ModelPrice, key: str) -> _Rate:
    value = model_price.__dict__.get(key)
    return value if isinstance(value, Decimal | TieredPrices) else None


def _at(rate: _Rate, threshold: int | None) -> Decimal | None:
    """The rate for requests just above ``threshold`` input tokens (``None``: below every tier)."""
    if not isinstance(rate, TieredPrices):
        return rate
    chosen = rate.base
    if threshold is not None:
        for tier in sorted(rate.tiers, key=lambda t: t.start):
            if tier.start <= threshold:
                chosen = tier.price
    return chosen


def price_from_model_price(model_price: ModelPrice) -> Price | None:
    """Our ``Price`` for a genai-prices ``ModelPrice``; ``None`` when it has no input token rate."""
    rates = {
        "input": _rate(model_price, "input_mtok"),
        "output": _rate(model_price, "output_mtok"),
        "cached_input": _rate(model_price, "cache_read_mtok"),
        "cache_write": _rate(model_price, "cache_write_mtok"),
        "reasoning": _rate(model_price, "output_reasoning_mtok"),
    }
    if rates["input"] is None:
        return None
    starts = sorted({t.start for r in rates.values() if isinstance(r, TieredPrices) for t in r.tiers})

    def build(threshold: int | None) -> Price:
        input_rate = _at(rates["input"], threshold)
        assert input_rate is not None  # checked above
        return Price(
            input=input_rate,
            output=_at(rates["output"], threshold) or Decimal(0),
            cached_input=_at(rates["cached_input"], threshold),
            cache_write=_at(rates["cache_write"], threshold),
            reasoning=_at(rates["reasoning"], threshold),
        )

    base = build(None)
    if not starts:
        return base
    return Price(
        input=base.input,
        output=base.output,
        cached_input=base.cached_input,
        cache_write=base.cache_write,
        reasoning=base.reasoning,
        tiers=tuple((start, build(start)) for start in starts),
    )


class PriceBook:
    """Prices by deployment: ``overrides`` (keyed by deployment name) first, then genai-prices.

    ``provider`` is our provider/host name ("openai", "anthropic", "gemini", "azure", "vllm",
    ...); ``model`` is the upstream model name as sent to the provider.
    """

    __slots__ = ("_at", "_cache", "_overrides", "_warned", "unknown")

    def __init__(self, overrides: Mapping[str, Price] | None = None, *, at: datetime | None = None) -> None:
        self._overrides = dict(overrides or {})
        self._at = at
        self._cache: dict[str, Price | None] = {}
        self._warned: set[str] = set()
        #: lookups that found no price, by model (every call counts, not just the first)
        self.unknown: Counter[str] = Counter()

    def known(self, deployment_name: str, provider: str | None, model: str) -> Price | None:
        """The price, without counting or logging a miss (estimates made before a request is sent)."""
        try:
            return self._cache[deployment_name]
        except KeyError:
            price = self._cache[deployment_name] = self._resolve(deployment_name, provider, model)
            return price

    def price_for(self, deployment_name: str, provider: str | None, model: str) -> Price | None:
        """The price, counting a miss in ``unknown`` and logging the first for each deployment."""
        price = self.known(deployment_name, provider, model)
        if price is None:
            self.unknown[model] += 1
            if deployment_name not in self._warned:
                self._warned.add(deployment_name)
                log.warning(
                    "deployment %r (model %r) has no known price: its costs are counted as unpriced; "
                    "add price: {input_per_mtok: ..., output_per_mtok: ...} to deployments.%s",
                    deployment_name,
                    model,
                    deployment_name,
                    extra={"deployment": deployment_name},
                )
        return price

    def warned(self, deployment_name: str) -> None:
        """The deployment's missing price was announced already (at start-up): misses are only counted."""
        self._warned.add(deployment_name)

    def _resolve(self, deployment_name: str, provider: str | None, model: str) -> Price | None:
        override = self._overrides.get(deployment_name)
        if override is not None:
            return override
        return lookup(provider, model, self._at)


def lookup(provider: str | None, model: str, at: datetime | None = None) -> Price | None:
    """The genai-prices list price of ``model`` on our ``provider`` (``FREE`` on the mock), or ``None``. No network."""
    if provider == MOCK_HOST:
        return FREE
    snapshot = data_snapshot.get_snapshot()
    when = at or datetime.now(tz=UTC)
    for provider_id in GENAI_PROVIDERS.get((provider or "").lower(), ()):
        try:
            _, info = snapshot.find_provider_model(model, None, provider_id, None)
        except LookupError:
            continue
        return price_from_model_price(info.get_prices(when))
    return None


def deprecated(provider: str | None, model: str) -> bool:
    """Whether the genai-prices list marks ``model`` on our ``provider`` deprecated (it gives no date). No network."""
    snapshot = data_snapshot.get_snapshot()
    for provider_id in GENAI_PROVIDERS.get((provider or "").lower(), ()):
        try:
            _, info = snapshot.find_provider_model(model, None, provider_id, None)
        except LookupError:
            continue
        return bool(info.deprecated)
    return False

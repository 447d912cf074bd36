"""API versus self-hosting, from the ledger's sustained token rates (``breakwater costs selfhost``,
docs/costs.md): pure arithmetic, no I/O.

With ``peak`` the busiest bucket's tokens per second, ``per_gpu`` the tokens per second one GPU
serves, ``gpu_hour`` its price per hour and ``api_month`` the API spend scaled to a month::

    GPUs needed         = ceil(peak / per_gpu)                       (at least 1)
    self-host per month = GPUs * gpu_hour * 720                      (30 days of 24 hours)
    API price per token = API spend in the window / tokens in the window
    break-even volume   = self-host per month / API price per token   (tokens per month)
    utilisation         = average tokens/s / (GPUs * per_gpu)

Self-hosting pays when the month's API spend exceeds the fleet's cost, that is when the
traffic's monthly volume exceeds the break-even volume. The fleet is sized for the peak and
paid for around the clock; engineers' time, power, storage and spare capacity are not counted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal

from breakwater.core.whatif import MONTH_S

#: hours in the month every monthly figure uses
MONTH_HOURS = MONTH_S // 3600


@dataclass(frozen=True, slots=True)
class SelfHost:
    """The estimate, every input and result (``breakwater costs selfhost --json`` prints these)."""

    window_s: float
    tokens: int
    average_tps: float
    peak_tps: float
    per_gpu_tps: float
    gpu_hour_usd: Decimal
    gpus: int
    selfhost_monthly_usd: Decimal
    api_window_usd: Decimal
    api_monthly_usd: Decimal
    #: USD per million tokens the API costs now (``None``: no tokens)
    api_per_mtok_usd: Decimal | None
    #: the monthly token volume at which both cost the same (``None``: no API price to compare)
    breakeven_tokens_per_month: Decimal | None
    utilisation: float

    @property
    def monthly_tokens(self) -> Decimal:
        return Decimal(self.tokens) * Decimal(MONTH_S) / Decimal(str(self.window_s))

    @property
    def selfhost_cheaper(self) -> bool:
        return self.selfhost_monthly_usd < self.api_monthly_usd


def estimate(
    *,
    tokens: int,
    peak_tokens: int,
    bucket_s: float,
    window_s: float,
    api_usd: Decimal,
    per_gpu_tps: float,
    gpu_hour_usd: Decimal,
) -> SelfHost:
    """The estimate for ``tokens`` over ``window_s`` seconds, ``peak_tokens`` in the busiest ``bucket_s``.

    Raises:
        ValueError: a window, bucket or GPU throughput not above 0, or a negative GPU price.
    """
    if window_s <= 0 or bucket_s <= 0 or per_gpu_tps <= 0:
        raise ValueError("the window, the bucket and the throughput per GPU must be above 0")
    if gpu_hour_usd < 0:
        raise ValueError("the GPU price per hour cannot be negative")
    average = tokens / window_s
    peak = peak_tokens / bucket_s
    gpus = max(1, math.ceil(peak / per_gpu_tps))
    selfhost = gpus * gpu_hour_usd * MONTH_HOURS
    api_month = api_usd * Decimal(MONTH_S) / Decimal(str(window_s))
    per_mtok = api_usd * 1_000_000 / tokens if tokens else None
    breakeven = selfhost * 1_000_000 / per_mtok if per_mtok else None
    return SelfHost(
        window_s=window_s,
        tokens=tokens,
        average_tps=average,
        peak_tps=peak,
        per_gpu_tps=per_gpu_tps,
        gpu_hour_usd=gpu_hour_usd,
        gpus=gpus,
        selfhost_monthly_usd=selfhost,
        api_window_usd=api_usd,
        api_monthly_usd=api_month,
        api_per_mtok_usd=per_mtok,
        breakeven_tokens_per_month=breakeven,
        utilisation=average / (gpus * per_gpu_tps),
    )

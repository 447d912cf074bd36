"""Deployments whose upstream model is being retired: from the config's ``retires`` date, or the
price list's ``deprecated`` mark (genai-prices gives no date).

Pure: the caller says what time it is, so the warnings (start-up, ``check-config``) and the
``/metrics`` gauge (``breakwater_deployment_retirement_days``) agree and tests inject a clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Literal

#: a dated retirement is warned about from this many days ahead
WARN_DAYS = 90


@dataclass(frozen=True, slots=True)
class Retirement:
    """A deployment's model retires on ``on`` (``None``: the price list marks it deprecated, no date).

    Args:
        deployment: the deployment's name.
        model: the upstream model it sends to.
        on: the retirement date (the config's ``retires``), or ``None``.
        source: ``config`` (``retires``) or ``price-list`` (genai-prices' ``deprecated``).
    """

    deployment: str
    model: str
    on: date | None
    source: Literal["config", "price-list"]

    def days_left(self, now: float) -> int | None:
        """Whole days from ``now`` (epoch seconds, UTC) to the date; negative once past; ``None`` undated."""
        if self.on is None:
            return None
        return (self.on - datetime.fromtimestamp(now, tz=UTC).date()).days

    def warning(self, now: float) -> str | None:
        """The line to log (and ``check-config`` prints), or ``None`` while the date is far off."""
        days = self.days_left(now)
        where = f"deployment {self.deployment!r} (model {self.model!r})"
        if days is None:
            return (
                f"{where}: the price list marks this model deprecated; plan its replacement "
                "(docs/safe-change.md, 'a provider deprecates a model')"
            )
        if days > WARN_DAYS:
            return None
        if days < 0:
            return f"{where}: its model was retired on {self.on:%Y-%m-%d} ({-days} days ago); its requests may fail"
        return (
            f"{where}: its model retires on {self.on:%Y-%m-%d}, in {days} days; move its routes to a replacement "
            "(docs/safe-change.md, 'a provider deprecates a model')"
        )

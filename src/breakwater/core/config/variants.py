"""A route's variants: canary and A/B arms with sticky assignment, and the refusal detector
(docs/variants.md).

An arm's target is a ``routes.Branch``: another route (``{route: R}``, which may itself branch
or cascade) or deployments of its own (``{deployments: [...]}``, served as the hidden route
``<route>.<arm>``). A route has variants or branches, not both: an arm that needs to branch
names a branching route.
"""

from __future__ import annotations

import re

from pydantic import Field, field_validator, model_validator

from breakwater.core.config.base import _Model
from breakwater.core.config.rollout import Guards, Ramp
from breakwater.core.config.targets import Branch

#: the smallest share a positive weight may have of the total: 0.1%
MIN_SHARE = 0.001

_STICKY = re.compile(r"^(user|key|session|header:[A-Za-z0-9!#$%&'*+.^_`|~-]+)$")


class Arm(Branch):
    """One variant: where its requests go, with which prompt version, and its weight (0: turned off)."""

    weight: float = Field(ge=0)
    #: ``name@VERSION``: the arm's requests get this version of a registry prompt (docs/prompts.md),
    #: whatever the request or its route names: arms that differ by prompt version only
    prompt: str | None = None
    #: the arm every other is compared against (``breakwater compare``); default: the first arm
    control: bool = False


class Variants(_Model):
    """``routes.<name>.variants``: the arms and who sticks to one."""

    #: whose requests always get the same arm: ``user`` (``x-breakwater-user``, else the body's
    #: ``user``), ``key`` (the virtual key), ``session`` (``x-breakwater-session``) or
    #: ``header:<name>``; without it: the user, then the key, then the request id (not sticky)
    sticky: str = "user"
    arms: dict[str, Arm] = Field(min_length=1)
    #: roll a canary back (its weight to 0, by a new configuration version) when it is worse
    #: than the control by more than these (docs/safe-change.md#automatic-rollback)
    guards: Guards | None = None
    #: advance the canary's share in steps while its guards hold (needs ``guards``)
    ramp: Ramp | None = None

    @field_validator("sticky")
    @classmethod
    def _subject(cls, value: str) -> str:
        if not _STICKY.match(value):
            raise ValueError("expected user, key, session or header:<name>")
        return value.lower() if value.startswith("header:") else value

    @model_validator(mode="after")
    def _weights(self) -> Variants:
        total = sum(arm.weight for arm in self.arms.values())
        if total <= 0:
            raise ValueError("at least one arm needs a positive weight")
        small = [name for name, arm in self.arms.items() if 0 < arm.weight < MIN_SHARE * total]
        if small:
            raise ValueError(f"arm(s) {', '.join(small)}: a positive weight must be at least 0.1% of the total")
        controls = [name for name, arm in self.arms.items() if arm.control]
        if len(controls) > 1:
            raise ValueError(f"only one arm may be the control: {', '.join(controls)}")
        if self.ramp is not None:
            if self.guards is None:
                raise ValueError("a ramp needs guards: it advances while they hold")
            if len(self.arms) != 2:
                raise ValueError("a ramp moves one canary against its control: give exactly two arms")
        return self

    @property
    def control(self) -> str:
        """The arm the others are compared against: the one marked ``control``, else the first."""
        return next((name for name, arm in self.arms.items() if arm.control), next(iter(self.arms)))

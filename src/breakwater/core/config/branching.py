"""A route that chooses where each request goes: named ``branches``, ordered ``rules``, a learned
router, or a ``cascade`` (docs/routing.md).

A branch (``routes.Branch``) is another route (``{route: NAME}``) or deployments of its own
(``{deployments: [...]}``, served as the hidden route ``<route>.<branch>`` with the parent's
retry, timeouts and fallbacks).
"""

from __future__ import annotations

import re

from pydantic import Field, field_validator, model_validator

from breakwater.core.config.base import _Model


def _regex(value: str | None) -> str | None:
    if value is not None:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a regular expression: {exc}") from None
    return value


class Condition(_Model):
    """What a request must have for its rule to apply: every condition given must hold."""

    #: the prompt's estimated tokens (bytes / 4, the gateway's cheap estimate) above / below
    prompt_tokens_over: int | None = Field(default=None, ge=0)
    prompt_tokens_under: int | None = Field(default=None, ge=1)
    #: a regular expression searched in the last user turn's text / the system prompt
    last_user_matches: str | None = None
    system_matches: str | None = None
    #: any of these words or phrases (case-insensitive) in the last user turn / the system prompt
    last_user_contains: list[str] = Field(default_factory=list)
    system_contains: list[str] = Field(default_factory=list)
    #: request tags (``x-breakwater-tags``, the body's ``metadata``, the key's tags): every one equal
    tags: dict[str, str] = Field(default_factory=dict)
    #: the request has tools / a ``response_format`` (``true``) or has none (``false``)
    tools: bool | None = None
    response_format: bool | None = None
    #: request headers (names case-insensitive): every one equal; ``"*"`` only needs it present
    header: dict[str, str] = Field(default_factory=dict)

    @field_validator("last_user_matches", "system_matches")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        return _regex(value)

    @model_validator(mode="after")
    def _something(self) -> Condition:
        if not self.model_fields_set:
            raise ValueError("a rule needs at least one condition")
        return self


class Rule(_Model):
    """``{if: {...}, then: BRANCH}``: the first rule whose conditions all hold chooses the branch."""

    when: Condition = Field(alias="if")
    then: str


class Learned(_Model):
    """The learned router: the cheap branch when the artifact's score clears the threshold."""

    #: the artifact ``breakwater router train`` wrote (a path, relative to the config file)
    artifact: str
    cheap: str
    strong: str
    #: overrides the threshold stored in the artifact
    threshold: float | None = Field(default=None, ge=0, le=1)


class Judge(_Model):
    """A judge route scores the answer from 1 to 10; the step passes at ``min_score`` or more."""

    route: str
    min_score: float = Field(default=7, ge=1, le=10)


class Checks(_Model):
    """A cascade step's answer is kept when every check given passes; else the next step is asked."""

    #: the answer is JSON valid against the request's ``response_format`` schema (JSON object
    #: when it asks for ``json_object``); a request without one passes
    json_schema: bool = False
    #: the answer's text matches this regular expression (searched)
    matches: str | None = None
    #: none of these phrases (case-insensitive) is in the answer ("I'm not sure", ...)
    not_contains: list[str] = Field(default_factory=list)
    #: the mean log probability of the answer's tokens is at least this (the step is asked for
    #: logprobs; an answer without them fails the check)
    min_mean_logprob: float | None = Field(default=None, le=0)
    #: this many answers of the step agree (the step is asked for ``n`` answers)
    agreement: int | None = Field(default=None, ge=2, le=8)
    judge: Judge | None = None

    @field_validator("matches")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        return _regex(value)


class Cascade(_Model):
    """Ask the steps in order, cheapest first; escalate while a step's answer fails the checks."""

    steps: list[str] = Field(min_length=2)
    checks: Checks

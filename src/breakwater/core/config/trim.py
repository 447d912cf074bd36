"""A route's history trimmer (``routes.X.trim``, docs/configuration.md "History trimming")."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from breakwater.core.config.base import _Model


class RouteTrim(_Model):
    """``routes.X.trim``: keep the system prompt and the last turns within a token budget.

    A conversation estimated over ``max_input_tokens`` loses its oldest turns (a user message and
    every answer, tool call and tool result after it, so a tool call never loses its result) until
    it fits; the last ``keep_last_turns`` turns are always kept, even when they alone are over.
    """

    #: the prompt's estimated tokens (the route's first deployment's tokenizer) above which it is trimmed
    max_input_tokens: int = Field(ge=1)
    #: the last this many turns are never trimmed
    keep_last_turns: int = Field(default=1, ge=1, le=10_000)
    #: ``drop``: the oldest turns are removed; ``summarise``: they are replaced by a summary
    #: written by ``summarise_route`` (a system message after the system prompt)
    mode: Literal["drop", "summarise"] = "drop"
    #: the route that writes summaries (a cheap model): a call through the gateway's own pipeline
    summarise_route: str | None = None
    #: the summary's ``max_tokens`` (room for it is kept in the budget)
    summary_max_tokens: int = Field(default=256, ge=16, le=8192)

    @model_validator(mode="after")
    def _route_for_summaries(self) -> RouteTrim:
        if self.mode == "summarise" and self.summarise_route is None:
            raise ValueError("mode 'summarise' needs 'summarise_route': the route that writes the summaries")
        if self.mode == "summarise" and self.summary_max_tokens >= self.max_input_tokens:
            raise ValueError("summary_max_tokens must be under max_input_tokens")
        return self

"""Data-loss prevention for one request: what was found, what each deployment may receive, and
the placeholders a masked answer gets its values back for.

The dlp stage (``dlp_stage.py``) scans the request once and leaves a ``DlpPlan`` on the
context; the gateway asks it, for each attempt, for the request *that deployment* may receive
(``outbound``): the route's policy with the deployment's provider's over it, so a fallback
from a self-hosted deployment to an external one is redacted for the external one. Nothing
here keeps a finding's value beyond the request: ledger and metrics see kinds only.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from breakwater.core.config.dlp import Action, ProviderDlp, RouteDlp
from breakwater.core.detectors import KINDS, Finding, Kind, replace, scan
from breakwater.core.errors import InvalidRequest
from breakwater.core.types import ChatRequest, ChatResponse, EmbeddingRequest, Message, TextPart
from breakwater.engine.guardrails.dlp_bodies import chat_body, responses_body
from breakwater.providers.openai_moderations import ModerationRequest

#: the actions that change what is sent
_CHANGING = frozenset({"redact", "mask"})

#: a masked value's placeholder: ``[EMAIL_1]``; restored only if this request made it
PLACEHOLDER = re.compile(r"\[([A-Z]{2,6})_(\d{1,4})\]")
#: the longest placeholder (a stream holds back an unfinished one at most this long)
PLACEHOLDER_MAX = 13


class SensitiveDataBlocked(InvalidRequest):
    """The request carries data its route (or the deployment's provider) refuses: a 400."""

    code = "sensitive_data_blocked"


def blocked(kinds: list[Kind]) -> SensitiveDataBlocked:
    """The error naming the kinds found, never the values."""
    names = ", ".join(sorted(set(kinds)))
    return SensitiveDataBlocked(
        f"The request was refused: it contains data of a kind this route does not accept ({names})."
    )


@dataclasses.dataclass(slots=True)
class DlpPlan:
    """One request's findings and the policies that decide what each deployment receives.

    Args:
        route: the route's policy (its default when the route has none).
        providers: the providers' own policies, by provider name.
        kinds: the kinds found in the request (one entry per finding).
    """

    route: RouteDlp
    providers: Mapping[str, ProviderDlp]
    kinds: list[Kind]
    #: ``(kind, action)`` -> findings, as finally sent (the ledger column and the metric)
    counts: dict[tuple[Kind, Action], int] = dataclasses.field(default_factory=dict)
    #: masked value -> its placeholder, and back (the same value keeps its placeholder on every attempt)
    placeholders: dict[str, str] = dataclasses.field(default_factory=dict)
    originals: dict[str, str] = dataclasses.field(default_factory=dict)
    numbers: dict[Kind, int] = dataclasses.field(default_factory=dict)

    def action(self, kind: Kind, provider: str | None) -> Action:
        """What ``kind`` gets on its way to ``provider`` (``None``: the route's own action)."""
        own = self.providers.get(provider) if provider is not None else None
        if own is not None:
            if kind in own.kinds:
                return own.kinds[kind]
            if own.action is not None:
                return own.action
        return self.route.kinds.get(kind, self.route.action)

    def count(self, provider: str | None) -> None:
        """Count the findings under the actions they get on the way to ``provider``."""
        counts: dict[tuple[Kind, Action], int] = {}
        for kind in self.kinds:
            key = (kind, self.action(kind, provider))
            counts[key] = counts.get(key, 0) + 1
        self.counts = counts

    def outbound(self, request: ChatRequest, provider: str) -> ChatRequest:
        """``request`` as the deployments of ``provider`` may receive it (raises when blocked).

        A masked *streamed* request loses its raw body (the OpenAI fast path) and its Responses
        body: its chunks must come back in the canonical form to have the placeholders restored.
        Any other keeps them, with the same text changes (``dlp_bodies.py``).
        """
        clean, masking = self._cleaner(provider)
        if clean is None:
            return request
        messages = [_message(m, clean) for m in request.messages]
        raw = None if (masking and request.stream) or request.raw is None else chat_body(request.raw, clean)
        forward = request.responses
        if forward is not None and forward.messages is request.messages:  # (not one a stage made stale)
            forward = None if masking and request.stream else responses_body(forward, clean, messages)
        return dataclasses.replace(request, messages=messages, raw=raw, responses=forward)

    def outbound_embeddings(self, request: EmbeddingRequest, provider: str) -> EmbeddingRequest:
        """``request``'s inputs as the deployments of ``provider`` may receive them (raises when
        blocked). A masked input is embedded with its placeholders: there is nothing to restore."""
        clean, _ = self._cleaner(provider)
        if clean is None:
            return request
        inputs = [clean(text) for text in request.inputs]
        raw = request.raw
        if raw is not None and isinstance(raw.get("input"), (str, list)):
            raw = {**raw, "input": inputs if isinstance(raw["input"], list) else inputs[0]}
        return dataclasses.replace(request, inputs=inputs, raw=raw)

    def outbound_moderation(self, request: ModerationRequest, provider: str) -> ModerationRequest:
        """``request``'s texts as the deployments of ``provider`` may receive them (raises when
        blocked): the body's ``input`` strings and text parts cleaned."""
        clean, _ = self._cleaner(provider)
        if clean is None:
            return request
        texts = [None if text is None else clean(text) for text in request.texts]
        value = request.raw.get("input")
        if isinstance(value, str):
            value = clean(value)
        elif isinstance(value, list):
            value = [_moderation_input(item, clean) for item in value]
        return dataclasses.replace(request, texts=texts, raw={**request.raw, "input": value})

    def _cleaner(self, provider: str) -> tuple[Callable[[str], str] | None, bool]:
        """What a text becomes on its way to ``provider`` (``None``: as it is), and whether
        some of it is masked; counts the findings under their actions, raises when blocked."""
        self.count(provider)
        actions = {kind: self.action(kind, provider) for kind in set(self.kinds)}
        refused = [kind for kind, action in actions.items() if action == "block"]
        if refused:
            raise blocked(refused)
        changing = tuple(kind for kind in KINDS if actions.get(kind) in _CHANGING)
        if not changing:
            return None, False

        def placeholder(text: str, finding: Finding) -> str:
            if actions[finding.kind] == "redact":
                return f"[{finding.kind.upper()}]"
            return self._mask(finding.kind, text[finding.start : finding.end])

        def clean(text: str) -> str:
            return replace(text, scan(text, changing), lambda f: placeholder(text, f))

        return clean, any(action == "mask" for action in actions.values())

    def reserve(self, request: ChatRequest) -> None:
        """Number the values some deployment will get masked, in the order the request holds them.

        Done before any call, so the numbering does not depend on which deployment answers, and
        a cached answer (made for the same request) is restored like a fresh one.
        """
        masked = tuple(
            kind
            for kind in KINDS
            if kind in self.kinds
            and (self.action(kind, None) == "mask" or any(self.action(kind, p) == "mask" for p in self.providers))
        )
        if not masked:
            return
        for text in _texts(request):
            for finding in scan(text, masked):
                self._mask(finding.kind, text[finding.start : finding.end])

    def _mask(self, kind: Kind, value: str) -> str:
        known = self.placeholders.get(value)
        if known is None:
            number = self.numbers[kind] = self.numbers.get(kind, 0) + 1
            known = f"[{kind.upper()}_{number}]"
            self.placeholders[value], self.originals[known] = known, value
        return known

    def fork(self) -> DlpPlan:
        """This plan for another call made for the same request (a judge grading its answer):
        the same policy and placeholders, counts of its own."""
        return dataclasses.replace(self, counts={})

    def summary(self) -> str:
        """The ledger's ``dlp_findings``: ``kind:action:count`` pairs, comma-separated (no values)."""
        return ",".join(f"{kind}:{action}:{n}" for (kind, action), n in sorted(self.counts.items()))

    def restore(self, text: str) -> str:
        """``text`` with this request's placeholders back to the values they stand for."""
        if not self.originals or "[" not in text:
            return text
        return PLACEHOLDER.sub(lambda m: self.originals.get(m.group(), m.group()), text)

    def restored(self, response: ChatResponse) -> ChatResponse:
        """``response`` with placeholders restored in every choice's text (re-encoded, not forwarded)."""
        if not self.originals:
            return response
        choices = [dataclasses.replace(c, message=_message(c.message, self.restore)) for c in response.choices]
        return dataclasses.replace(response, choices=choices, raw_body=None)


def find(request: ChatRequest) -> list[Kind]:
    """The kind of each finding in the request's text (messages' text parts, tool call
    arguments, a registry prompt's variables)."""
    return [finding.kind for text in _texts(request) for finding in scan(text)]


def _texts(request: ChatRequest) -> Iterator[str]:
    if request.prompt is not None and request.prompt.variables:
        # a registry prompt is rendered later (the prompts stage): its variables are the
        # caller's text in it (the rendered messages are cleaned per deployment like any other)
        yield json.dumps(request.prompt.variables, ensure_ascii=False, default=str)
    for message in request.messages:
        for part in message.content:
            if isinstance(part, TextPart):
                yield part.text
        for call in message.tool_calls:
            yield call.arguments


def _moderation_input(item: Any, clean: Any) -> Any:
    if isinstance(item, str):
        return clean(item)
    if isinstance(item, dict) and isinstance(item.get("text"), str):
        return {**item, "text": clean(item["text"])}
    return item


def _message(message: Message, clean: Any) -> Message:
    content = [dataclasses.replace(p, text=clean(p.text)) if isinstance(p, TextPart) else p for p in message.content]
    calls = [dataclasses.replace(c, arguments=clean(c.arguments)) for c in message.tool_calls]
    return dataclasses.replace(message, content=content, tool_calls=calls)

"""The prompts stage: a request that names a prompt (or whose route pins one) gets its messages.

Which version, in this order (docs/prompts.md):

1. ``ctx.prompt_choice``, set by an earlier stage (a variants arm): it wins outright;
2. the route's pin (``routes.X.prompt``): a request naming another prompt, or another version
   of a pinned version, is refused (400), so a pinned route serves exactly what it pins;
3. the request's ``prompt`` field: ``id`` and ``version``; no version means the prompt's current.

The rendered messages go before the request's own (a system prompt first, the caller's turns
after it); the reference is consumed (``request.prompt``, its ``extra_params`` entry and, on the
OpenAI fast path, the raw body's ``prompt`` field), so the upstream never sees it. Every other
request passes through untouched.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from breakwater.core.config import Config
from breakwater.core.config.prompts import parse_ref
from breakwater.core.errors import InvalidRequest
from breakwater.core.types import ChatRequest, Message, PromptReference, TextPart
from breakwater.engine.context import RequestContext
from breakwater.engine.pipeline import ChatAnswer, ChatCall, Stage
from breakwater.engine.prompts.render import CompiledPrompt, CompiledVersion, compile_prompts

#: the body field a request names its prompt in (both wires)
FIELD = "prompt"
#: a client's prompt name is quoted in an error up to this many characters
_NAME_SHOWN = 64

#: a route's pin: the prompt's name and version (``None``: its current version)
Pin = tuple[str, int | None]


class PromptsStage(Stage):
    name = "prompts"

    @classmethod
    def of(cls, config: Config) -> PromptsStage | None:
        """The stage for a config's prompts and pins (``None`` when it has no prompts)."""
        if not config.prompts:
            return None
        pins: dict[str, Pin] = {}
        for route, spec in config.routes.items():
            ref = None if spec.prompt is None else parse_ref(spec.prompt)
            if ref is not None:  # (a malformed pin never passed the config's checks)
                pins[route] = ref
        return cls(compile_prompts(config.prompts), pins)

    def __init__(self, prompts: Mapping[str, CompiledPrompt], pins: Mapping[str, Pin]) -> None:
        self.prompts = prompts
        self.pins = pins
        #: requests rendered, by (prompt, version): /metrics
        self.rendered: dict[tuple[str, int], int] = {}

    def chat(self, call: ChatCall) -> ChatCall:
        return functools.partial(self._through, call)

    async def _through(self, call: ChatCall, request: ChatRequest, ctx: RequestContext) -> ChatAnswer:
        pin = self.pins.get(request.model)
        if request.prompt is not None or pin is not None or ctx.prompt_choice is not None:
            self._render(request, ctx, pin)
        return await call(request, ctx)

    def choose(self, ref: PromptReference | None, pin: Pin | None, ctx: RequestContext, route: str) -> CompiledVersion:
        """The version a request gets (see the module's docstring).

        Raises:
            InvalidRequest: an unknown prompt or version, a reference the route's pin forbids,
                or no prompt named on a route that pins none.
        """
        name: str | None
        version: int | None
        if ctx.prompt_choice is not None:
            name, version = ctx.prompt_choice
        else:
            name = None if ref is None else ref.name
            version = None if ref is None else ref.version
            if pin is not None:
                if name is not None and name != pin[0]:
                    raise InvalidRequest(
                        f"route {route!r} pins prompt {pin[0]!r}; the request names {_shown(name)!r}", param="prompt.id"
                    )
                if pin[1] is not None:
                    if version is not None and version != pin[1]:
                        raise InvalidRequest(
                            f"route {route!r} pins {pin[0]}@{pin[1]}; the request asks for version {version}",
                            param="prompt.version",
                        )
                    version = pin[1]
                name = pin[0]
            if name is None:
                raise InvalidRequest("'prompt.id' is required: the route pins no prompt", param="prompt.id")
        prompt = self.prompts.get(name)
        if prompt is None:
            raise InvalidRequest(f"unknown prompt {_shown(name)!r}", param="prompt.id", code="prompt_not_found")
        chosen = prompt.versions.get(prompt.default if version is None else version)
        if chosen is None:
            numbers = ", ".join(map(str, prompt.versions))
            raise InvalidRequest(
                f"prompt {name!r} has no version {version} (versions: {numbers})",
                param="prompt.version",
                code="prompt_not_found",
            )
        return chosen

    def _render(self, request: ChatRequest, ctx: RequestContext, pin: Pin | None) -> None:
        ref = request.prompt
        version = self.choose(ref, pin, ctx, request.model)
        ctx.prompt = key = (version.name, version.version)
        texts = version.texts({} if ref is None else ref.variables)
        rendered = self.rendered
        rendered[key] = rendered.get(key, 0) + 1
        roles = [role for role, _ in version.messages]
        request.messages = [
            *(Message(role, [TextPart(text)]) for role, text in zip(roles, texts, strict=True)),
            *request.messages,
        ]
        if ref is not None:
            request.prompt = None
            request.extra_params = [p for p in request.extra_params if p != FIELD]
        raw = request.raw
        if raw is not None:  # the OpenAI fast path forwards this body: it gets the messages too
            wire: list[Any] = [{"role": role, "content": text} for role, text in zip(roles, texts, strict=True)]
            body = {k: v for k, v in raw.items() if k != FIELD} if ref is not None else dict(raw)
            body["messages"] = [*wire, *(raw.get("messages") or [])]
            request.raw = body


def _shown(name: str) -> str:
    return name if len(name) <= _NAME_SHOWN else name[:_NAME_SHOWN] + "..."

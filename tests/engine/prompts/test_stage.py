"""The prompts stage on its own (engine/prompts/stage.py): what the next call receives, a version
chosen by an earlier stage (``RequestContext.prompt_choice``), the OpenAI fast path's raw body, and
requests that name no prompt passing untouched."""

from __future__ import annotations

from typing import Any

import pytest

from breakwater.core.config import build_config
from breakwater.core.errors import InvalidRequest
from breakwater.core.types import ChatRequest, ChatResponse, Message, PromptReference, TextPart
from breakwater.engine.context import RequestContext
from breakwater.engine.pipeline import ChatAnswer
from breakwater.engine.prompts.stage import PromptsStage

CONFIG: dict[str, Any] = {
    "providers": {"m": {"type": "mock"}},
    "deployments": {"d": {"provider": "m", "model": "x"}},
    "routes": {"chat": {"deployments": ["d"]}, "pinned": {"deployments": ["d"], "prompt": "tone@1"}},
    "prompts": {
        "tone": {
            "versions": {
                1: {"messages": [{"role": "system", "content": "Be formal."}]},
                2: {
                    "messages": [{"role": "system", "content": "Be {{ mood }}."}],
                    "variables": {"mood": {"type": "enum", "values": ["kind", "terse"], "default": "kind"}},
                },
            }
        }
    },
}


class Seen:
    def __init__(self) -> None:
        self.request: ChatRequest | None = None

    async def __call__(self, request: ChatRequest, ctx: RequestContext) -> ChatAnswer:
        self.request = request
        return ChatResponse(id="x", model=request.model, created=0, choices=[])


def _stage() -> PromptsStage:
    stage = PromptsStage.of(build_config(CONFIG))
    assert stage is not None
    return stage


def _request(model: str = "chat", prompt: PromptReference | None = None, raw: bool = False) -> ChatRequest:
    request = ChatRequest(model=model, messages=[Message("user", [TextPart("hi")])], prompt=prompt)
    if prompt is not None:
        request.extra_params.append("prompt")
    if raw:
        request.raw = {"model": model, "messages": [{"role": "user", "content": "hi"}], "prompt": {"id": "tone"}}
    return request


async def test_the_prompt_comes_first_and_the_reference_is_consumed() -> None:
    """The next call sees the rendered messages before the caller's, and no trace of the reference:
    not the field, not its extra_params entry, not the raw body's ``prompt`` (the OpenAI fast path)."""
    seen, ctx = Seen(), RequestContext("r1")
    await _stage().chat(seen)(_request(prompt=PromptReference("tone", 2, {"mood": "terse"}), raw=True), ctx)
    request = seen.request
    assert request is not None and request.prompt is None and request.extra_params == []
    assert [(m.role, m.text()) for m in request.messages] == [("system", "Be terse."), ("user", "hi")]
    assert request.raw == {
        "model": "chat",
        "messages": [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "hi"}],
    }
    assert ctx.prompt == ("tone", 2)


async def test_a_choice_of_an_earlier_stage_wins() -> None:
    """A variants arm sets ``ctx.prompt_choice``: the request's own version, and even a route's pin, give way."""
    stage = _stage()
    for model in ("chat", "pinned"):
        seen, ctx = Seen(), RequestContext("r2")
        ctx.prompt_choice = ("tone", 2)
        await stage.chat(seen)(_request(model, PromptReference("tone", 1, {})), ctx)
        assert seen.request is not None and seen.request.messages[0].text() == "Be kind."
        assert ctx.prompt == ("tone", 2)
    assert stage.rendered == {("tone", 2): 2}


async def test_a_request_without_a_prompt_passes_untouched() -> None:
    seen, ctx = Seen(), RequestContext("r3")
    request = _request(raw=True)
    raw = request.raw
    await _stage().chat(seen)(request, ctx)
    assert seen.request is request and request.raw is raw and len(request.messages) == 1 and ctx.prompt is None


async def test_a_refused_request_still_names_its_prompt_version() -> None:
    """The ledger row of a 400 for bad variables says which version refused them."""
    ctx = RequestContext("r4")
    with pytest.raises(InvalidRequest):
        await _stage().chat(Seen())(_request(prompt=PromptReference("tone", 2, {"mood": "angry"})), ctx)
    assert ctx.prompt == ("tone", 2)


def test_no_prompts_no_stage() -> None:
    assert PromptsStage.of(build_config({k: v for k, v in CONFIG.items() if k != "prompts"} | {"routes": {}})) is None

"""The mock's OpenAI legacy completions (``POST /v1/completions``): the chat answer to the prompt
as text (``echo``: after the prompt), whole or as ``text_completion`` chunks."""

from __future__ import annotations

import dataclasses
from typing import Any

from breakwater.core.types import ChatRequest, ChatResponse, Message, TextPart
from breakwater.infra.mock.model import MockModel, stream_events
from breakwater.providers.openai_completions_serve import CompletionStreamEncoder, decode_completion_request


def completion_answer(data: Any, model: MockModel, response_id: str, created: int) -> tuple[ChatRequest, ChatResponse]:
    """The decoded request and the model's answer to its prompt."""
    request = decode_completion_request(data)
    answer = model.chat(request)
    choices = answer.choices
    if data.get("echo") is True:
        prompt = request.messages[0].text()
        choices = [
            dataclasses.replace(c, message=Message("assistant", [TextPart(prompt + c.message.text())])) for c in choices
        ]
    return request, ChatResponse(response_id, answer.model, created, choices, answer.usage)


def completion_frames(request: ChatRequest, response: ChatResponse) -> tuple[list[bytes], list[bytes]]:
    """The stream as frames, and its closing frame."""
    encoder = CompletionStreamEncoder(request)
    frames = [f for f in (encoder.encode(e) for e in stream_events(response)) if f]
    return frames, [encoder.end()]

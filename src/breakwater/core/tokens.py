"""A quick, offline estimate of how many tokens a prompt takes, for context-window checks.

About four bytes of UTF-8 per token holds for English on every current tokenizer and
overestimates slightly for code; CJK text (three bytes a character, about one token each) is
underestimated by a quarter. That is good enough to pick a deployment *before* sending: a
prompt the estimate lets through but the upstream refuses still falls back, on the upstream's
context-length error.
"""

from __future__ import annotations

import orjson

from breakwater.core.types import ChatRequest, ImagePart, TextPart

#: tokens each message costs beyond its text (role, separators), as OpenAI's chat format counts
PER_MESSAGE = 4
#: an image at high detail (OpenAI: 85 + 170 per 512-px tile; a 1024x1024 image is 765)
IMAGE = 765
IMAGE_LOW = 85
BYTES_PER_TOKEN = 4


def estimate_prompt_tokens(request: ChatRequest) -> int:
    """Estimated input tokens of ``request``: messages, tool calls and tool definitions."""
    size = 0
    tokens = 3  # every reply is primed with a few tokens
    for message in request.messages:
        tokens += PER_MESSAGE
        for part in message.content:
            if isinstance(part, TextPart):
                size += len(part.text.encode())
            elif isinstance(part, ImagePart):
                tokens += IMAGE_LOW if part.detail == "low" else IMAGE
        for call in message.tool_calls:
            size += len(call.name) + len(call.arguments.encode())
    for tool in request.tools:
        size += len(orjson.dumps(tool.parameters)) + len(tool.name) + len((tool.description or "").encode())
    return tokens + -(-size // BYTES_PER_TOKEN)


def requested_tokens(request: ChatRequest) -> int:
    """Input estimate plus the output the client asked room for (``max_tokens``)."""
    return estimate_prompt_tokens(request) + (request.max_tokens or 0)

"""How many tokens a prompt takes, offline, for context-window checks and estimates.

``estimate_prompt_tokens`` walks the request and counts its text with a ``count`` function:
the model's real tokenizer when the gateway has one (``breakwater.infra.tokenizers``, tiktoken
with its rank files shipped in the package), else ``byte_estimate``. Message framing and
images are counted as OpenAI's chat format counts them.

About four bytes of UTF-8 per token holds for English on every current tokenizer and
overestimates slightly for code; CJK text (three bytes a character, about one token each) is
underestimated by a quarter. That is good enough to pick a deployment *before* sending: a
prompt the estimate lets through but the upstream refuses still falls back, on the upstream's
context-length error.
"""

from __future__ import annotations

from collections.abc import Callable

import orjson

from breakwater.core.types import ChatRequest, ImagePart, Message, TextPart

#: tokens each message costs beyond its text (role, separators), as OpenAI's chat format counts
PER_MESSAGE = 4
#: an image at high detail (OpenAI: 85 + 170 per 512-px tile; a 1024x1024 image is 765)
IMAGE = 765
IMAGE_LOW = 85
BYTES_PER_TOKEN = 4


#: counts the tokens of a text
TextCounter = Callable[[str], int]


def byte_estimate(text: str) -> int:
    """About four bytes of UTF-8 a token, rounded up: the fallback when no tokenizer is loaded."""
    return -(-len(text.encode()) // BYTES_PER_TOKEN)


def token_bound(text: str) -> int:
    """At least the count any counter here gives ``text``: byte-level BPE never makes more tokens
    than UTF-8 bytes, and the scaled estimates (Claude's) add at most 10%."""
    return -(-len(text.encode()) * 11 // 10)


def openai_image_tokens(part: ImagePart) -> int:
    """An image as OpenAI's chat format counts it, assuming 1024x1024 at high detail."""
    return IMAGE_LOW if part.detail == "low" else IMAGE


def estimate_prompt_tokens(
    request: ChatRequest, count: TextCounter = byte_estimate, image: Callable[[ImagePart], int] = openai_image_tokens
) -> int:
    """Input tokens of ``request``: messages, tool calls and tool definitions (``image``: an image's tokens)."""
    texts: list[str] = []
    tokens = 3  # every reply is primed with a few tokens
    for message in request.messages:
        tokens += PER_MESSAGE
        for part in message.content:
            if isinstance(part, TextPart):
                texts.append(part.text)
            elif isinstance(part, ImagePart):
                tokens += image(part)
        for call in message.tool_calls:
            texts.append(call.name)
            texts.append(call.arguments)
    for tool in request.tools:
        texts.append(tool.name)
        texts.append(tool.description or "")
        texts.append(orjson.dumps(tool.parameters).decode())
    return tokens + count("\n".join(texts))


def message_tokens(
    message: Message, count: TextCounter = byte_estimate, image: Callable[[ImagePart], int] = openai_image_tokens
) -> int:
    """One message's share of ``estimate_prompt_tokens``: its framing, text, images and tool calls
    (counted on their own, so the shares of a request add up to about its estimate)."""
    texts = [part.text for part in message.content if isinstance(part, TextPart)]
    tokens = PER_MESSAGE + sum(image(part) for part in message.content if isinstance(part, ImagePart))
    for call in message.tool_calls:
        texts.append(call.name)
        texts.append(call.arguments)
    return tokens + count("\n".join(texts)) if texts else tokens


def requested_tokens(request: ChatRequest, count: TextCounter = byte_estimate) -> int:
    """Input estimate plus the output the client asked room for (``max_tokens``)."""
    return estimate_prompt_tokens(request, count) + (request.max_tokens or 0)

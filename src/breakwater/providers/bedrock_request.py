"""Canonical chat requests to Bedrock ``Converse`` bodies, for the client side.

The Converse API (Bedrock Runtime ``2023-09-30``) takes the same body for ``/converse`` and
``/converse-stream``: ``messages`` of content blocks (``text``, ``image``, ``toolUse``,
``toolResult``), ``system`` blocks, ``inferenceConfig`` and ``toolConfig``. Turns must alternate
between ``user`` and ``assistant`` (Anthropic's models refuse two in a row), so consecutive
canonical messages of one role, tool results included, become one turn. Images are bytes
(base64 in JSON) or an ``s3://`` location; Converse cannot fetch an ``https://`` image.

Two per-family quirks (Bedrock user guide, "Prompt caching" and "Inference request parameters",
2025): Anthropic's and Amazon Nova's models take prompt-cache checkpoints, so a canonical
``cache_control`` breakpoint becomes a ``cachePoint`` block right after what it marks; Anthropic's
take ``top_k``, which Converse has no field for, in ``additionalModelRequestFields``.
"""

from __future__ import annotations

from typing import Any

import orjson

from breakwater.core.errors import InvalidRequest
from breakwater.core.types import ChatRequest, ContentPart, ImagePart, Message, TextPart, ToolCall

#: Converse's ImageFormat values, by MIME type and by file extension
IMAGE_FORMATS = {"image/png": "png", "image/jpeg": "jpeg", "image/gif": "gif", "image/webp": "webp"}
_EXTENSIONS = {"png": "png", "jpg": "jpeg", "jpeg": "jpeg", "gif": "gif", "webp": "webp"}
CACHE_POINT: dict[str, Any] = {"cachePoint": {"type": "default"}}


def takes_cache_points(model: str) -> bool:
    """Whether the model family takes ``cachePoint`` blocks (also through an inference profile: ``us.`` ...)."""
    return "anthropic.claude" in model or "amazon.nova" in model


def takes_top_k(model: str) -> bool:
    """Anthropic's models read ``top_k`` from ``additionalModelRequestFields``."""
    return "anthropic.claude" in model


def chat_body(request: ChatRequest, model: str) -> dict[str, Any]:
    """The Converse body for ``request`` to ``model`` (which goes in the URL, not here)."""
    cache = takes_cache_points(model)
    system: list[dict[str, Any]] = []
    turns: list[dict[str, Any]] = []
    for i, m in enumerate(request.messages):
        path = f"messages[{i}]"
        if m.role in ("system", "developer"):
            for p in m.content:
                if isinstance(p, TextPart) and p.text:
                    system.append({"text": p.text})
                    if cache and p.cache_control is not None:
                        system.append(CACHE_POINT)
            continue
        blocks = _blocks(m, path, cache)
        if not blocks:
            continue  # Converse refuses a turn without content, and a blank text block
        role = "assistant" if m.role == "assistant" else "user"
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    if cache and request.cache_control is not None and turns:
        turns[-1]["content"].append(CACHE_POINT)  # Anthropic's top-level breakpoint: the whole prompt
    body: dict[str, Any] = {"messages": turns}
    if request.top_k is not None and takes_top_k(model):
        body["additionalModelRequestFields"] = {"top_k": request.top_k}
    if system:
        body["system"] = system
    inference = _inference_config(request)
    if inference:
        body["inferenceConfig"] = inference
    tool_config = _tool_config(request, cache)
    if tool_config:
        body["toolConfig"] = tool_config
    return body


def uses_tool_blocks(request: ChatRequest) -> bool:
    """Whether the conversation already holds tool calls or results (Converse then needs ``toolConfig``)."""
    return any(m.role == "tool" or m.tool_calls for m in request.messages)


def _blocks(m: Message, path: str, cache: bool) -> list[dict[str, Any]]:
    if m.role == "tool":
        result = _tool_result(m, path)
        return [result, CACHE_POINT] if cache and m.cache_control is not None else [result]
    blocks: list[dict[str, Any]] = []
    for j, p in enumerate(m.content):
        if isinstance(p, TextPart) and not p.text:
            continue
        blocks.append(_block(p, f"{path}.content[{j}]"))
        if cache and p.cache_control is not None:
            blocks.append(CACHE_POINT)
    for j, c in enumerate(m.tool_calls if m.role == "assistant" else ()):
        blocks.append(_tool_use(c, f"{path}.tool_calls[{j}]"))
        if cache and c.cache_control is not None:
            blocks.append(CACHE_POINT)
    return blocks


def _block(p: ContentPart, path: str) -> dict[str, Any]:
    if isinstance(p, TextPart):
        return {"text": p.text}
    return {"image": image_block(p, path)}


def image_block(p: ImagePart, path: str) -> dict[str, Any]:
    """A Converse ``ImageBlock`` for a ``data:`` URL (bytes) or an ``s3://`` URI; anything else is refused."""
    if p.url.startswith("data:"):
        header, _, data = p.url[5:].partition(",")
        mime, _, encoding = header.partition(";")
        image_format = IMAGE_FORMATS.get(mime.lower())
        if encoding != "base64" or not data or image_format is None:
            raise InvalidRequest(
                f"'{path}.image_url.url': expected a base64 data URL of a PNG, JPEG, GIF or WebP image",
                param=f"{path}.image_url.url",
            )
        return {"format": image_format, "source": {"bytes": data}}
    if p.url.startswith("s3://"):
        extension = p.url.rpartition(".")[2].lower()
        return {"format": _EXTENSIONS.get(extension, "png"), "source": {"s3Location": {"uri": p.url}}}
    raise InvalidRequest(
        f"'{path}.image_url.url': Bedrock takes images as base64 data URLs or s3:// URIs, not links",
        param=f"{path}.image_url.url",
    )


def _tool_use(call: ToolCall, path: str) -> dict[str, Any]:
    try:
        arguments = orjson.loads(call.arguments or "{}")
    except orjson.JSONDecodeError:
        arguments = None
    if not isinstance(arguments, dict):
        raise InvalidRequest(f"'{path}.function.arguments': expected a JSON object", param=f"{path}.function.arguments")
    return {"toolUse": {"toolUseId": call.id, "name": call.name, "input": arguments}}


def _tool_result(m: Message, path: str) -> dict[str, Any]:
    if not m.tool_call_id:
        raise InvalidRequest(
            f"'{path}.tool_call_id': a tool message needs the id of its call", param=f"{path}.tool_call_id"
        )
    text = m.text()
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        value = None
    # a JSON object goes as a json block (models see structure); anything else as text
    content: list[dict[str, Any]] = [{"json": value}] if isinstance(value, dict) else [{"text": text or " "}]
    content.extend(
        {"image": image_block(p, f"{path}.content[{j}]")} for j, p in enumerate(m.content) if isinstance(p, ImagePart)
    )
    return {"toolResult": {"toolUseId": m.tool_call_id, "content": content}}


def _inference_config(request: ChatRequest) -> dict[str, Any]:
    config: dict[str, Any] = {}
    if request.max_tokens is not None:
        config["maxTokens"] = request.max_tokens
    if request.temperature is not None:
        config["temperature"] = request.temperature
    if request.top_p is not None:
        config["topP"] = request.top_p
    if request.stop:
        config["stopSequences"] = request.stop
    return config


def _tool_config(request: ChatRequest, cache: bool) -> dict[str, Any]:
    choice = request.tool_choice
    if not request.tools or (choice is not None and choice.mode == "none" and not uses_tool_blocks(request)):
        # Converse has no "none": leaving the tools out is how a model is kept from calling one
        # (with tool blocks in the history it needs them: the adapter reports tool_choice instead)
        return {}
    tools: list[dict[str, Any]] = []
    for t in request.tools:
        spec = {
            "name": t.name,
            **({"description": t.description} if t.description else {}),
            "inputSchema": {"json": t.parameters or {"type": "object", "properties": {}}},
        }
        tools.append({"toolSpec": spec})
        if cache and t.cache_control is not None:
            tools.append(CACHE_POINT)
    config: dict[str, Any] = {"tools": tools}
    if choice is not None and choice.mode == "required":
        config["toolChoice"] = {"any": {}}
    elif choice is not None and choice.mode == "named" and choice.name:
        config["toolChoice"] = {"tool": {"name": choice.name}}
    elif choice is not None and choice.mode == "auto":
        config["toolChoice"] = {"auto": {}}
    return config

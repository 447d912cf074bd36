"""The OpenAI embeddings wire format, server side: read ``POST /v1/embeddings`` bodies, write the answer.

The gateway's ``/v1/embeddings`` and the mock provider (when it plays OpenAI) both use it.
``input`` comes in OpenAI's four shapes: a string, strings, token ids, or lists of token ids
(what LangChain's ``OpenAIEmbeddings`` sends); ``encoding_format: base64`` packs each vector as
little-endian float32, as OpenAI does (the OpenAI SDK asks for it by default).
"""

from __future__ import annotations

import array
import base64
import sys
from typing import Any

import orjson

from breakwater.core.errors import InvalidRequest
from breakwater.core.types import EmbeddingRequest, EmbeddingResponse
from breakwater.providers import fields as f


def decode_embeddings_request(body: Any) -> EmbeddingRequest:
    """An embeddings body; ``input`` is a string, strings, token ids, or lists of token ids."""
    body = f.obj(body, "body")
    model = f.req_str(body, "model")
    inputs, tokens = _embedding_input(body.get("input"))
    fmt = body.get("encoding_format", "float")
    if fmt not in ("float", "base64"):
        raise f.bad("encoding_format", "'float' or 'base64'")
    return EmbeddingRequest(
        model=model,
        inputs=inputs,
        dimensions=f.opt_int(body, "dimensions", minimum=1),
        encoding_format=fmt,
        user=f.opt_str(body, "user"),
        raw=body,
        token_inputs=tokens,
    )


_INPUT = "a string, an array of strings, an array of token ids or an array of token-id arrays"


def _embedding_input(value: Any) -> tuple[list[str], list[list[int]] | None]:
    """(texts, None) or ([], token-id lists): OpenAI's four shapes of ``input``, none of them empty."""
    if isinstance(value, str):
        return [value], None
    if not isinstance(value, list) or not value:
        if value is None or value == []:
            raise InvalidRequest("'input' is required and must not be empty", param="input")
        raise f.bad("input", _INPUT)
    first = value[0]
    if isinstance(first, str):
        if all(isinstance(v, str) for v in value):
            return value, None
    elif isinstance(first, list):
        if all(_token_ids(v) for v in value):
            return [], value
    elif _token_ids(value):
        return [], [value]
    raise f.bad("input", _INPUT)


def _token_ids(value: Any) -> bool:
    """A non-empty list of non-negative integers (booleans are not token ids)."""
    return isinstance(value, list) and bool(value) and all(type(t) is int and t >= 0 for t in value)


def encode_embeddings_response(response: EmbeddingResponse, encoding_format: str = "float") -> bytes:
    """OpenAI's embeddings list; ``base64`` packs each vector as little-endian float32, as OpenAI does."""
    vectors: list[list[float]] | list[str] = response.vectors
    if encoding_format == "base64":
        vectors = [base64.b64encode(_float32(v)).decode("ascii") for v in response.vectors]
    return orjson.dumps(
        {
            "object": "list",
            "data": [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)],
            "model": response.model,
            "usage": {"prompt_tokens": response.usage.input_tokens, "total_tokens": response.usage.input_tokens},
        }
    )


def _float32(vector: list[float]) -> bytes:
    packed = array.array("f", vector)
    if sys.byteorder == "big":
        packed.byteswap()
    return packed.tobytes()

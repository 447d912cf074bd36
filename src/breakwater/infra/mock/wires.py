"""The vendor wire formats as the mock speaks them: bodies, streams and real error shapes.

Request decoding and response encoding are the gateway's own serve modules, so the mock and the
gateway's ingress agree on every field. What is mock-specific lives here: each vendor's error
catalogue (status -> type/code/message, as their APIs really answer), the model list, the
"prompt blocked" outcomes and the deliberately broken bodies for the ``malformed`` fault.
"""

from __future__ import annotations

from typing import Any, Protocol

import orjson

from breakwater.core.types import ChatRequest, ChatResponse, EmbeddingRequest, EmbeddingResponse, StreamEvent
from breakwater.infra.mock.model import stream_events
from breakwater.providers import (
    anthropic_serve,
    anthropic_serve_request,
    bedrock_serve,
    gemini_serve,
    gemini_serve_request,
    openai_embeddings_serve,
    openai_serve,
)

#: the names GET /v1/models lists; any model name is accepted and echoed back
MODEL_NAMES = ("mock-chat", "mock-chat-large", "mock-embedding")
_CREATED = 1_700_000_000  # a fixed "created" for the model list, so it is cacheable bytes
_FILTER_MESSAGE = (
    "The response was filtered due to the prompt triggering Azure OpenAI's content management policy. "
    "Please modify your prompt and retry."
)


class Encoder(Protocol):
    """A serve module's ``StreamEncoder``."""

    def encode(self, event: StreamEvent) -> bytes: ...

    def end(self) -> bytes: ...

    def error(self, message: str, type_: str, code: str | None) -> bytes: ...


class Wire(Protocol):
    name: str
    #: what separates two SSE frames in this vendor's streams
    frame_sep: bytes
    #: response id prefix, so ids look like the vendor's (chatcmpl-..., msg_...)
    id_prefix: str
    malformed_body: bytes
    malformed_frame: bytes

    def decode_chat(self, body: Any, model: str | None, stream: bool) -> ChatRequest: ...

    def encode_chat(self, response: ChatResponse) -> bytes: ...

    def stream_encoder(self, request: ChatRequest) -> Encoder: ...

    def decode_embeddings(self, body: Any, model: str | None) -> EmbeddingRequest: ...

    def encode_embeddings(self, response: EmbeddingResponse, request: EmbeddingRequest) -> bytes: ...

    def error(self, status: int, message: str | None = None) -> bytes:
        """The vendor's error body for ``status``; its stock message unless one is given."""
        ...

    def context_length(self) -> bytes:
        """The vendor's 400 body for a prompt longer than the context window."""
        ...

    def prompt_blocked(self, request: ChatRequest, input_tokens: int) -> tuple[int, bytes] | None:
        """Status and body when the prompt itself is filtered, or None if the vendor only
        filters outputs (then the output filter applies)."""
        ...

    def models(self) -> bytes: ...


# --- OpenAI -----------------------------------------------------------------------------------

# (type, code, message) per status, as api.openai.com answers
_OPENAI_ERRORS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Invalid request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: (
        "invalid_request_error",
        "unsupported_country_region_territory",
        "Country, region, or territory not supported",
    ),
    404: ("invalid_request_error", "model_not_found", "The model does not exist or you do not have access to it."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached for requests. Please try again later."),
    500: ("server_error", None, "The server had an error while processing your request. Sorry about that!"),
    503: ("server_error", None, "The server is overloaded or not ready yet."),
    529: ("server_error", "overloaded", "The server is overloaded. Please try again later."),
}


class OpenAIWire:
    name = "openai"
    frame_sep = b"\n\n"
    id_prefix = "chatcmpl-"
    malformed_body = b'{"id": "chatcmpl-mock", "object": "chat.completion", "choices": [{"index": 0, "mess'
    malformed_frame = b'data: {"id": "chatcmpl-mock", "choices": [{"delta": {"content": "Hel\n\n'

    def decode_chat(self, body: Any, model: str | None, stream: bool) -> ChatRequest:
        if model is not None and isinstance(body, dict) and "model" not in body:
            body["model"] = model  # Azure names the deployment in the path, not the body
        return openai_serve.decode_chat_request(body)

    def encode_chat(self, response: ChatResponse) -> bytes:
        return openai_serve.encode_chat_response(response)

    def stream_encoder(self, request: ChatRequest) -> Encoder:
        return openai_serve.StreamEncoder(request)

    def decode_embeddings(self, body: Any, model: str | None) -> EmbeddingRequest:
        if model is not None and isinstance(body, dict) and "model" not in body:
            body["model"] = model
        return openai_embeddings_serve.decode_embeddings_request(body)

    def encode_embeddings(self, response: EmbeddingResponse, request: EmbeddingRequest) -> bytes:
        return openai_embeddings_serve.encode_embeddings_response(response, request.encoding_format)

    def error(self, status: int, message: str | None = None) -> bytes:
        default = ("server_error", None, "The server had an error.") if status >= 500 else _OPENAI_ERRORS[400]
        type_, code, stock = _OPENAI_ERRORS.get(status, default)
        return openai_serve.error_body(message or stock, type_, None, code)

    def context_length(self) -> bytes:
        message = (
            "This model's maximum context length is 128000 tokens. However, your messages resulted in "
            "128001 tokens. Please reduce the length of the messages."
        )
        return openai_serve.error_body(message, "invalid_request_error", "messages", "context_length_exceeded")

    def prompt_blocked(self, request: ChatRequest, input_tokens: int) -> tuple[int, bytes] | None:
        return 400, openai_serve.error_body(_FILTER_MESSAGE, "invalid_request_error", "prompt", "content_filter")

    def models(self) -> bytes:
        data = [{"id": n, "object": "model", "created": _CREATED, "owned_by": "breakwater-mock"} for n in MODEL_NAMES]
        return orjson.dumps({"object": "list", "data": data})


# --- Anthropic --------------------------------------------------------------------------------

_ANTHROPIC_ERRORS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "Invalid request."),
    401: ("authentication_error", "invalid x-api-key"),
    402: ("billing_error", "Your credit balance is too low to access the Anthropic API."),
    403: ("permission_error", "Your API key does not have permission to use the specified resource."),
    404: ("not_found_error", "The requested resource could not be found."),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: ("rate_limit_error", "Number of requests has exceeded your per-minute rate limit."),
    500: ("api_error", "Internal server error"),
    504: ("timeout_error", "Request timed out"),
    529: ("overloaded_error", "Overloaded"),
}


class AnthropicWire:
    name = "anthropic"
    frame_sep = b"\n\n"
    id_prefix = "msg_"
    malformed_body = b'{"id": "msg_mock", "type": "message", "role": "assistant", "content": [{"type": "te'
    malformed_frame = b'event: message_start\ndata: {"type": "message_start", "message": {"id": "msg_\n\n'

    def decode_chat(self, body: Any, model: str | None, stream: bool) -> ChatRequest:
        return anthropic_serve_request.decode_chat_request(body)

    def encode_chat(self, response: ChatResponse) -> bytes:
        return anthropic_serve.encode_chat_response(response)

    def stream_encoder(self, request: ChatRequest) -> Encoder:
        return anthropic_serve.StreamEncoder(request)

    def decode_embeddings(self, body: Any, model: str | None) -> EmbeddingRequest:
        raise LookupError("Anthropic has no embeddings endpoint")

    def encode_embeddings(self, response: EmbeddingResponse, request: EmbeddingRequest) -> bytes:
        raise LookupError("Anthropic has no embeddings endpoint")

    def error(self, status: int, message: str | None = None) -> bytes:
        default = _ANTHROPIC_ERRORS[500] if status >= 500 else _ANTHROPIC_ERRORS[400]
        type_, stock = _ANTHROPIC_ERRORS.get(status, default)
        return anthropic_serve.error_body(message or stock, type_)

    def context_length(self) -> bytes:
        return anthropic_serve.error_body("prompt is too long: 200001 tokens > 200000 maximum", "invalid_request_error")

    def prompt_blocked(self, request: ChatRequest, input_tokens: int) -> tuple[int, bytes] | None:
        return None  # Anthropic refuses in the output (stop_reason "refusal"), never with an error

    def models(self) -> bytes:
        data = [
            {
                "type": "model",
                "id": n,
                "display_name": n.replace("-", " ").title(),
                "created_at": "2023-11-14T22:13:20Z",
            }
            for n in MODEL_NAMES
        ]
        return orjson.dumps({"data": data, "has_more": False, "first_id": data[0]["id"], "last_id": data[-1]["id"]})


# --- Gemini -----------------------------------------------------------------------------------

_GEMINI_ERRORS: dict[int, tuple[str, str]] = {
    400: ("INVALID_ARGUMENT", "Request contains an invalid argument."),
    401: ("UNAUTHENTICATED", "API key not valid. Please pass a valid API key."),
    403: ("PERMISSION_DENIED", "The caller does not have permission."),
    404: ("NOT_FOUND", "Requested entity was not found."),
    409: ("ABORTED", "The operation was aborted."),
    429: ("RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota)."),
    499: ("CANCELLED", "The operation was cancelled."),
    500: ("INTERNAL", "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting"),
    501: ("UNIMPLEMENTED", "Operation is not implemented, or supported, or enabled."),
    503: ("UNAVAILABLE", "The model is overloaded. Please try again later."),
    504: ("DEADLINE_EXCEEDED", "Deadline expired before operation could complete."),
    529: ("UNAVAILABLE", "The model is overloaded. Please try again later."),
}  # fmt: skip


class GeminiWire:
    name = "gemini"
    frame_sep = b"\r\n\r\n"
    id_prefix = ""
    malformed_body = b'{"candidates": [{"content": {"role": "model", "parts": [{"text": "Hel'
    malformed_frame = b'data: {"candidates": [{"content": {"parts": [{"te\r\n\r\n'

    def decode_chat(self, body: Any, model: str | None, stream: bool) -> ChatRequest:
        return gemini_serve_request.decode_chat_request(body, model or "", stream)

    def encode_chat(self, response: ChatResponse) -> bytes:
        return gemini_serve.encode_chat_response(response)

    def stream_encoder(self, request: ChatRequest) -> Encoder:
        return gemini_serve.StreamEncoder(request)

    def decode_embeddings(self, body: Any, model: str | None) -> EmbeddingRequest:
        if isinstance(body, dict) and "requests" not in body and "content" in body:
            body = {"requests": [body]}  # :embedContent is :batchEmbedContents with one request
        return gemini_serve_request.decode_embeddings_request(body, model or "")

    def encode_embeddings(self, response: EmbeddingResponse, request: EmbeddingRequest) -> bytes:
        return gemini_serve.encode_embeddings_response(response)

    def error(self, status: int, message: str | None = None) -> bytes:
        default = _GEMINI_ERRORS[500] if status >= 500 else ("FAILED_PRECONDITION", "Precondition check failed.")
        code, stock = _GEMINI_ERRORS.get(status, default)
        return gemini_serve.error_body(status, message or stock, code)

    def context_length(self) -> bytes:
        message = "The input token count (1048577) exceeds the maximum number of tokens allowed (1048576)."
        return gemini_serve.error_body(400, message, "INVALID_ARGUMENT")

    def prompt_blocked(self, request: ChatRequest, input_tokens: int) -> tuple[int, bytes] | None:
        ratings = [
            {"category": c, "probability": "HIGH" if c == "HARM_CATEGORY_DANGEROUS_CONTENT" else "NEGLIGIBLE"}
            for c in ("HARM_CATEGORY_HATE_SPEECH", "HARM_CATEGORY_DANGEROUS_CONTENT", "HARM_CATEGORY_HARASSMENT")
        ]
        body = {
            "promptFeedback": {"blockReason": "SAFETY", "safetyRatings": ratings},
            "usageMetadata": {"promptTokenCount": input_tokens, "totalTokenCount": input_tokens},
            "modelVersion": request.model,
        }
        return 200, orjson.dumps(body)

    def models(self) -> bytes:
        data = [
            {
                "name": f"models/{n}",
                "version": "001",
                "displayName": n.replace("-", " ").title(),
                "inputTokenLimit": 1048576,
                "outputTokenLimit": 8192,
                "supportedGenerationMethods": (
                    ["embedContent", "batchEmbedContents"]
                    if "embedding" in n
                    else ["generateContent", "streamGenerateContent", "countTokens"]
                ),
            }
            for n in MODEL_NAMES
        ]
        return orjson.dumps({"models": data})


# --- Bedrock (Converse) -----------------------------------------------------------------------

_BEDROCK_MESSAGES: dict[int, str] = {
    400: "The provided request is not valid",
    403: "You don't have access to the model with the specified model ID.",
    404: "The provided model identifier is invalid.",
    408: "Model has timed out in processing the request. Try your request again.",
    424: "The model encountered an error processing the request.",
    429: "Too many requests, please wait before trying again.",
    500: "The server encountered an internal error while processing the request.",
    503: "Bedrock is unable to process your request.",
}


class BedrockWire:
    name = "bedrock"
    frame_sep = b""  # event-stream messages are length-prefixed: each encoder output is one frame
    id_prefix = ""
    malformed_body = b'{"output": {"message": {"role": "assistant", "content": [{"te'
    # a message whose checksum does not match its bytes
    malformed_frame = (
        b"\x00\x00\x00\x20\x00\x00\x00\x00\xde\xad\xbe\xef" + b'{"p":"broken"}' + b"\x00\x00\x00\x00\x00\x00"
    )

    def decode_chat(self, body: Any, model: str | None, stream: bool) -> ChatRequest:
        return bedrock_serve.decode_chat_request(body, model or "", stream)

    def encode_chat(self, response: ChatResponse) -> bytes:
        return bedrock_serve.encode_chat_response(response)

    def stream_encoder(self, request: ChatRequest) -> Encoder:
        return bedrock_serve.StreamEncoder(request)

    def decode_embeddings(self, body: Any, model: str | None) -> EmbeddingRequest:
        raise LookupError("Converse has no embeddings endpoint")

    def encode_embeddings(self, response: EmbeddingResponse, request: EmbeddingRequest) -> bytes:
        raise LookupError("Converse has no embeddings endpoint")

    def error(self, status: int, message: str | None = None) -> bytes:
        stock = _BEDROCK_MESSAGES.get(status) or _BEDROCK_MESSAGES[500 if status >= 500 else 400]
        return bedrock_serve.error_body(message or stock)

    def context_length(self) -> bytes:
        return bedrock_serve.error_body("Input is too long for requested model.")

    def prompt_blocked(self, request: ChatRequest, input_tokens: int) -> tuple[int, bytes] | None:
        return None  # Bedrock's guardrails answer with stopReason guardrail_intervened (the output filter)

    def models(self) -> bytes:
        data = [
            {"modelId": n, "modelName": n, "providerName": "Breakwater", "outputModalities": ["TEXT"]}
            for n in MODEL_NAMES
        ]
        return orjson.dumps({"modelSummaries": data})


def wire_frames(wire: Wire, request: ChatRequest, response: ChatResponse) -> tuple[list[bytes], list[bytes]]:
    """The stream as single SSE frames, split into the body and the closing frames."""
    encoder = wire.stream_encoder(request)
    sep = wire.frame_sep
    frames: list[bytes] = []
    for event in stream_events(response):
        out = encoder.encode(event)
        if out and not sep:
            frames.append(out)  # length-prefixed frames (Bedrock): one encoder output, one frame
        elif out:
            frames.extend(f + sep for f in out.split(sep) if f)
    tail = encoder.end()
    end = ([tail] if tail else []) if not sep else [f + sep for f in tail.split(sep) if f]
    return frames, end

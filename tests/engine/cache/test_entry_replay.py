"""Entries as bytes and back, stored answers as streams, and streams put back together."""

from __future__ import annotations

import orjson
import pytest

from breakwater.core.types import (
    ChatResponse,
    Choice,
    EmbeddingResponse,
    FinishEvent,
    Message,
    PassthroughChunk,
    StreamStart,
    TextDelta,
    TextPart,
    ToolCall,
    ToolCallDelta,
    Usage,
    UsageEvent,
)
from breakwater.engine.cache.entry import CacheEntry, CorruptEntry, decode_entry, encode_entry
from breakwater.engine.cache.replay import Assembly, replay_events
from breakwater.engine.tee import StreamClosed
from breakwater.providers.openai import chat_completion

ANSWER = ChatResponse(
    id="chatcmpl-1",
    model="gpt-x",
    created=1700000000,
    choices=[
        Choice(0, Message("assistant", [TextPart("Four.")]), "stop", {"content": [{"token": "Four", "logprob": -0.1}]}),
        Choice(1, Message("assistant", [], [ToolCall("call_1", "add", '{"a": 2}')]), "tool_calls"),
    ],
    usage=Usage(input_tokens=12, output_tokens=5, cached_input_tokens=2),
)
#: an OpenAI answer as the upstream sent it (the fast path keeps its bytes)
RAW = orjson.dumps(
    {
        "id": "chatcmpl-2",
        "object": "chat.completion",
        "created": 1700000001,
        "model": "gpt-x",
        "system_fingerprint": "fp_unmodelled",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi."}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
    }
)


def test_an_entry_round_trips() -> None:
    """Everything stored comes back equal, for chat and embeddings; an answer kept as the upstream's
    bytes comes back as those exact bytes, read again into the same canonical answer."""
    entry = CacheEntry(1.5, 60.0, "dep", "openai", "gpt-x", ANSWER)
    assert decode_entry(encode_entry(entry)) == entry
    raw = CacheEntry(1.5, 60.0, "dep", "openai", "gpt-x", chat_completion(orjson.loads(RAW), RAW, "gpt-x"))
    back = decode_entry(encode_entry(raw))
    assert back == raw and back.response.raw_body == RAW
    assert len(encode_entry(raw)) < len(RAW) + 200
    vectors = EmbeddingResponse("emb", [[0.25, -1.0], [0.5, 0.0]], Usage(input_tokens=4), b'{"data": []}')
    embedded = CacheEntry(2.0, 30.0, "dep", "openai", "emb", vectors)
    assert decode_entry(encode_entry(embedded)) == embedded


@pytest.mark.parametrize(
    "value", [b"", b"not json", b"[]", b'{"format": 99}', orjson.dumps({"format": 1, "stored_at": 1})]
)
def test_anything_else_is_a_corrupt_entry(value: bytes) -> None:
    """Values that are not entries of this format raise CorruptEntry, nothing else."""
    with pytest.raises(CorruptEntry):
        decode_entry(value)


def _assembled(batches: list[list[object]], error: BaseException | None = None) -> list[ChatResponse]:
    done: list[ChatResponse] = []
    tap = Assembly(done.append)
    for batch in batches:
        tap.batch(batch)  # type: ignore[arg-type]
    tap.end(error)
    return done


def test_a_replayed_answer_assembles_back_to_the_same_answer() -> None:
    """replay_events then Assembly is the identity on choices and usage."""
    (back,) = _assembled([replay_events(ANSWER)])
    assert back.choices == ANSWER.choices and back.usage == ANSWER.usage and back.id == ANSWER.id


def test_pieces_across_batches_are_joined() -> None:
    """Text and tool-call arguments arriving in pieces are joined in order."""
    (back,) = _assembled(
        [
            [StreamStart("s", "m", 1), TextDelta("Fo"), ToolCallDelta(0, '{"a"', id="c", name="f")],
            [TextDelta("ur."), ToolCallDelta(0, ": 1}"), FinishEvent("stop")],
            [UsageEvent(Usage(3, 2))],
        ]
    )
    assert back.choices[0].message.text() == "Four."
    assert back.choices[0].message.tool_calls == [ToolCall("c", "f", '{"a": 1}')]
    assert back.usage == Usage(3, 2)


def test_forwarded_openai_chunks_are_read_back() -> None:
    """Fast-path chunks (the upstream's own bytes) are assembled like canonical events."""
    chunk = {"id": "c1", "model": "m", "created": 5, "choices": [{"index": 0, "delta": {"content": "Hi"}}]}
    last = {"id": "c1", "model": "m", "created": 5, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
    (back,) = _assembled(
        [[PassthroughChunk(orjson.dumps(chunk)), PassthroughChunk(orjson.dumps(last), Usage(4, 1), ["stop"])]]
    )
    assert (back.id, back.choices[0].message.text(), back.choices[0].finish_reason) == ("c1", "Hi", "stop")
    assert back.usage == Usage(4, 1)


@pytest.mark.parametrize(
    ("batches", "error"),
    [
        ([[StreamStart("s", "m", 1), TextDelta("Fo")]], StreamClosed()),  # the client left
        ([[StreamStart("s", "m", 1), TextDelta("Fo")]], RuntimeError("upstream broke")),
        ([[StreamStart("s", "m", 1), TextDelta("Fo")]], None),  # ended without a finish
        ([[StreamStart("s", "m", 1), TextDelta("Fo"), FinishEvent("content_filter")]], None),
        ([[StreamStart("s", "m", 1), FinishEvent("error")]], None),
        ([[PassthroughChunk(b"not json")]], None),
    ],
)
def test_a_stream_that_did_not_finish_as_an_answer_is_not_handed_on(
    batches: list[list[object]], error: BaseException | None
) -> None:
    """Cut, failed, unfinished, filtered or unreadable streams are never stored."""
    assert _assembled(batches, error) == []

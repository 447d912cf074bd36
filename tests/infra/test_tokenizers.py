"""The shipped tiktoken encodings: verified, exact, offline; and which model counts with which."""

from __future__ import annotations

import gzip
import hashlib
from importlib import resources

import pytest

from breakwater.core.tokens import byte_estimate, estimate_prompt_tokens, token_bound
from breakwater.core.types import ChatRequest, Message, TextPart
from breakwater.infra import tokenizers
from breakwater.infra.tokenizers import EXPECTED_SHA256, Tokenizers, encoding_for, load_encoding
from tests.polling import until


@pytest.mark.parametrize("name", sorted(EXPECTED_SHA256))
def test_shipped_rank_files_match_the_hashes_tiktoken_publishes(name: str) -> None:
    raw = gzip.decompress(resources.files(tokenizers).joinpath(f"{name}.tiktoken.gz").read_bytes())
    assert hashlib.sha256(raw).hexdigest() == EXPECTED_SHA256[name]


def test_token_ids_are_tiktokens_own() -> None:
    # ids from tiktoken's published examples: the encodings are the real ones, not look-alikes
    assert load_encoding("cl100k_base").encode_ordinary("hello world") == [15339, 1917]
    assert load_encoding("o200k_base").encode_ordinary("hello world") == [24912, 2375]
    assert load_encoding("o200k_base").n_vocab == 200019


def test_a_damaged_rank_file_fails_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(EXPECTED_SHA256, "cl100k_base", "0" * 64)
    load_encoding.cache_clear()
    try:
        with pytest.raises(tokenizers.TokenizerDataError, match="damaged"):
            load_encoding("cl100k_base")
    finally:
        monkeypatch.undo()
        load_encoding.cache_clear()


@pytest.mark.parametrize(
    ("provider", "model", "expected"),
    [
        ("openai", "gpt-4o-mini", ("o200k_base", 1.0, True)),
        ("openai", "gpt-5", ("o200k_base", 1.0, True)),
        ("azure", "o3-mini", ("o200k_base", 1.0, True)),
        ("openai", "gpt-4-turbo", ("cl100k_base", 1.0, True)),
        ("openai", "text-embedding-3-small", ("cl100k_base", 1.0, True)),
        ("anthropic", "claude-sonnet-4-5", ("cl100k_base", 1.1, False)),
        ("gemini", "gemini-2.5-flash", ("o200k_base", 1.0, False)),
        ("vllm", "meta-llama/Llama-3.1-8B-Instruct", ("cl100k_base", 1.0, False)),
    ],
)
def test_encoding_per_model(provider: str, model: str, expected: tuple[str, float, bool]) -> None:
    assert encoding_for(provider, model) == expected


def test_counts_for_anthropic_are_the_cl100k_count_plus_ten_percent() -> None:
    tok = Tokenizers()
    tok.warm(["cl100k_base"])
    text = "The quick brown fox jumps over the lazy dog. " * 20
    base = len(load_encoding("cl100k_base").encode_ordinary(text))
    assert tok.count("anthropic", "claude-3-5-haiku", text) == -(-base * 11 // 10)
    assert tok.count("openai", "gpt-4", text) == base


def test_prompt_estimate_uses_the_given_counter() -> None:
    request = ChatRequest(model="m", messages=[Message("user", [TextPart("hello world")])])
    exact = estimate_prompt_tokens(request, Tokenizers().counter("openai", "gpt-4o").count)
    # 3 priming + 4 per message + 2 tokens of text
    assert exact == 3 + 4 + 2
    assert estimate_prompt_tokens(request) == 3 + 4 + byte_estimate("hello world")


def test_count_never_waits_for_an_encoding_it_loads_in_the_background() -> None:
    """Before an encoding is in memory, ``count`` answers the byte estimate (scaled like the
    encoding's count) and a background thread loads it; afterwards counts are exact."""
    tok = Tokenizers()
    assert tok.loaded() == []
    text = "The quick brown fox jumps over the lazy dog. " * 20
    estimate = byte_estimate(text)
    first = tok.count("anthropic", "claude-3-5-haiku", text)
    assert first == -(-estimate * 11 // 10)
    until(lambda: tok.loaded() == ["cl100k_base"], 30, "cl100k_base is loaded in the background")
    exact = len(load_encoding("cl100k_base").encode_ordinary(text))
    assert tok.count("anthropic", "claude-3-5-haiku", text) == -(-exact * 11 // 10)
    assert tok.count("openai", "gpt-4", text) == exact
    assert tok.loaded() == ["cl100k_base"]  # o200k_base was never needed, never loaded


def test_warm_loads_only_the_encodings_named() -> None:
    tok = Tokenizers()
    tok.warm(["o200k_base"])
    assert tok.loaded() == ["o200k_base"]
    assert tok.count("openai", "gpt-4o", "hello world") == 2


def test_an_encoding_keeps_no_python_copy_of_its_ranks_yet_counts_and_decodes() -> None:
    enc = load_encoding("cl100k_base")
    assert enc._mergeable_ranks == {}
    ids = enc.encode_ordinary("hello world")
    assert enc.decode(ids) == "hello world"


@pytest.mark.parametrize(
    "text",
    [
        "hello world",
        "def f(x):\n    return {'a': [1, 2, 3]}\n" * 20,
        "東京は日本の首都です。" * 30,
        "🦀🐍🚀 ✓ ñ ß " * 40,
        " " * 500,
        "".join(chr(c) for c in range(0x20, 0x2000, 7)),
    ],
)
@pytest.mark.parametrize(("provider", "model"), [("openai", "gpt-4o"), ("openai", "gpt-4"), ("anthropic", "claude")])
def test_the_byte_bound_is_never_below_a_count(provider: str, model: str, text: str) -> None:
    """``token_bound`` (what a context-window check uses to skip counting) holds every counter's
    count, scaled estimates included: text of any script, code, emoji, runs of spaces."""
    tok = Tokenizers()
    tok.warm(["cl100k_base", "o200k_base"])
    assert tok.count(provider, model, text) <= token_bound(text)


async def test_load_is_awaited_once_and_makes_counts_exact() -> None:
    """``load`` returns with the model's encoding in memory (and only that one): ``count`` is
    exact right away, not a byte estimate."""
    tok = Tokenizers()
    await tok.load("openai", "gpt-4o")
    assert tok.loaded() == ["o200k_base"]
    assert tok.count("openai", "gpt-4o", "hello world") == 2  # the byte estimate would say 3
    await tok.load("openai", "gpt-4o-mini")  # already there: nothing more loads
    assert tok.loaded() == ["o200k_base"]

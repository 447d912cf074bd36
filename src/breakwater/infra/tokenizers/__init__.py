"""Exact token counts, offline: tiktoken's ``o200k_base`` and ``cl100k_base`` shipped as package data.

The BPE rank files sit next to this module, gzipped (``*.tiktoken.gz``); each is checked
against the SHA-256 tiktoken publishes for it before use, so a damaged or swapped file fails
loudly instead of miscounting. Nothing is downloaded, ever. Loading an encoding reads and
parses a few MB (about 0.3 s and 43 MB for ``o200k_base``, 0.1 s and 23 MB for ``cl100k_base``),
so it happens once, and only for an encoding something needs, never at start-up nor on import:
``load`` (awaited, in a thread) where counts must be exact now (a tpm or budget reservation),
else on first use in a background thread, while ``count`` answers with the byte estimate until
it is loaded.

Which encoding counts which model, and the documented estimates for models whose tokenizer is
not public:

- OpenAI ``gpt-4o``, ``gpt-4.1``, ``gpt-5``, ``o1``/``o3``/``o4`` families: ``o200k_base``, exact;
- OpenAI ``gpt-4``, ``gpt-3.5``, ``text-embedding-*``: ``cl100k_base``, exact;
- Gemini: ``o200k_base`` (Gemini's SentencePiece vocabulary is of the same size class;
  an estimate);
- Anthropic (Claude): ``cl100k_base`` plus 10% (Claude's tokenizer splits English somewhat
  finer than cl100k; an estimate, the upstream's reported usage is what gets billed);
- anything else (self-hosted Llama, Mistral, Qwen, ...): ``cl100k_base``, an estimate.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import hashlib
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from importlib import resources

import tiktoken

from breakwater.core.tokens import byte_estimate

#: SHA-256 of each uncompressed rank file, as tiktoken's own loader expects them
EXPECTED_SHA256 = {
    "cl100k_base": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    "o200k_base": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
}

# The split patterns and special tokens are part of each encoding's published definition
# (tiktoken_ext/openai_public.py); the counts match tiktoken's only with exactly these.
_PATTERNS = {
    "cl100k_base": r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s""",
    "o200k_base": "|".join(
        [
            r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
            r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
            r"""\p{N}{1,3}""",
            r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
            r"""\s*[\r\n]+""",
            r"""\s+(?!\S)""",
            r"""\s+""",
        ]
    ),
}
_SPECIAL = {
    "cl100k_base": {
        "<|endoftext|>": 100257,
        "<|fim_prefix|>": 100258,
        "<|fim_middle|>": 100259,
        "<|fim_suffix|>": 100260,
        "<|endofprompt|>": 100276,
    },
    "o200k_base": {"<|endoftext|>": 199999, "<|endofprompt|>": 200018},
}

_O200K_PREFIXES = ("gpt-4o", "gpt-4.1", "gpt-4.5", "gpt-5", "o1", "o3", "o4", "chatgpt-4o", "gpt-oss")
_CL100K_PREFIXES = ("gpt-4", "gpt-3.5", "text-embedding-", "gpt-35")


#: the encoding token-id embedding inputs are decoded with
TOKEN_INPUT_ENCODING = "cl100k_base"


class TokenizerDataError(RuntimeError):
    """A shipped rank file is missing or does not match its published hash."""


@cache  # one copy per process, however many apps (the ranks take tens of MB)
def load_encoding(name: str) -> tiktoken.Encoding:
    """Read, verify and build one shipped encoding (a few hundred ms: not on a request path)."""
    if name not in EXPECTED_SHA256:
        raise TokenizerDataError(f"no shipped encoding named {name!r}")
    try:
        raw = gzip.decompress(resources.files(__name__).joinpath(f"{name}.tiktoken.gz").read_bytes())
    except (OSError, EOFError) as exc:
        raise TokenizerDataError(f"cannot read the {name} rank file: {exc}") from exc
    digest = hashlib.sha256(raw).hexdigest()
    if digest != EXPECTED_SHA256[name]:
        raise TokenizerDataError(f"the {name} rank file is damaged: sha256 {digest}, expected {EXPECTED_SHA256[name]}")
    ranks: dict[bytes, int] = {}
    for line in raw.splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    encoding = tiktoken.Encoding(
        name=name, pat_str=_PATTERNS[name], mergeable_ranks=ranks, special_tokens=_SPECIAL[name]
    )
    # tiktoken keeps the Python dict only to pickle the encoding (its Rust core holds its own
    # copy); dropping it frees about 25 MB for o200k_base. Nothing here pickles an encoding.
    encoding._mergeable_ranks = {}
    return encoding


@dataclass(frozen=True, slots=True)
class Counter:
    """Counts the tokens of a text for one model family: an encoding, scaled for estimates."""

    encoding: tiktoken.Encoding
    factor: float = 1.0
    #: ``True`` when the count is exact for the model, ``False`` when it is a documented estimate
    exact: bool = True

    def count(self, text: str) -> int:
        if not text:
            return 0
        n = len(self.encoding.encode_ordinary(text))
        return n if self.factor == 1.0 else -int(-n * self.factor // 1)


def encoding_for(provider: str | None, model: str) -> tuple[str, float, bool]:
    """(encoding name, scale factor, exact) for a model on a provider."""
    name = model.rsplit("/", 1)[-1].lower()
    if provider == "anthropic" or name.startswith("claude"):
        return "cl100k_base", 1.1, False
    if provider == "gemini" or name.startswith("gemini"):
        return "o200k_base", 1.0, False
    if name.startswith(_O200K_PREFIXES):
        return "o200k_base", 1.0, provider in (None, "openai", "azure")
    if name.startswith(_CL100K_PREFIXES):
        return "cl100k_base", 1.0, provider in (None, "openai", "azure")
    return "cl100k_base", 1.0, False


class Tokenizers:
    """The shipped encodings, loaded once on first use (thread-safe), and a counter per model."""

    def __init__(self) -> None:
        self._encodings: dict[str, tiktoken.Encoding] = {}
        self._counters: dict[tuple[str | None, str], Counter] = {}
        self._lock = threading.Lock()
        #: encodings being loaded in the background (``count`` before they are ready)
        self._loading: set[str] = set()

    def encoding(self, name: str) -> tiktoken.Encoding:
        enc = self._encodings.get(name)
        if enc is None:
            with self._lock:
                enc = self._encodings.get(name)
                if enc is None:
                    enc = self._encodings[name] = load_encoding(name)
        return enc

    def warm(self, names: Iterable[str] | None = None) -> None:
        """Load these encodings now (every shipped one by default); run it in a thread."""
        for name in EXPECTED_SHA256 if names is None else names:
            self.encoding(name)

    def loaded(self) -> list[str]:
        """The encodings in memory."""
        return sorted(self._encodings)

    def counter(self, provider: str | None, model: str) -> Counter:
        key = (provider, model)
        counter = self._counters.get(key)
        if counter is None:
            name, factor, exact = encoding_for(provider, model)
            counter = self._counters[key] = Counter(self.encoding(name), factor, exact)
        return counter

    def count(self, provider: str | None, model: str, text: str) -> int:
        """Tokens of ``text`` for ``model`` on ``provider`` (the engine's ``TokenCounters`` port).

        Never blocks on loading: before the model's encoding is in memory, the byte estimate
        (scaled like the encoding's count) while a background thread loads it.
        """
        counter = self._counters.get((provider, model))
        if counter is None:
            name, factor, _ = encoding_for(provider, model)
            if name not in self._encodings:
                self._load_in_background(name)
                n = byte_estimate(text)
                return n if factor == 1.0 else -int(-n * factor // 1)
            counter = self.counter(provider, model)
        return counter.count(text)

    async def load(self, provider: str | None, model: str) -> None:
        """Have ``model``'s encoding in memory (the ``TokenCounters`` port): loaded once, in a
        thread; awaited by a caller that needs exact counts now (a tpm or budget reservation)."""
        name = encoding_for(provider, model)[0]
        if name not in self._encodings:
            await asyncio.to_thread(self.encoding, name)

    def _load_in_background(self, name: str) -> None:
        with self._lock:
            if name in self._loading or name in self._encodings:
                return
            self._loading.add(name)
        threading.Thread(target=self._load, args=(name,), name=f"breakwater-tokenizer-{name}", daemon=True).start()

    def _load(self, name: str) -> None:
        try:
            self.encoding(name)
        finally:
            with self._lock:
                self._loading.discard(name)

    def decode(self, ids: list[int]) -> str:
        """The text of token ids a client made for an OpenAI embedding model (``cl100k_base``: the
        encoding of ``text-embedding-*``, and what LangChain falls back to for any other name).

        Raises:
            ValueError: an id the encoding does not have.
        """
        try:
            return self.encoding(TOKEN_INPUT_ENCODING).decode(ids)
        except (KeyError, OverflowError) as exc:
            raise ValueError(f"not a {TOKEN_INPUT_ENCODING} token id ({exc})") from None

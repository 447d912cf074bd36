"""Does a new prompt version keep the provider's cacheable prefix? (``breakwater prompts diff``)

Providers cache the longest prefix of a prompt they have seen before, from a minimum length
(OpenAI: 1,024 tokens, then in steps of 128; Anthropic: 1,024 to 4,096 by model). A version's
*static prefix* is what every request rendering it starts with, whatever its variables: its
messages in order, each as ``[role]`` and its text, up to the first placeholder. The rule
(docs/prompts.md):

- ``uncached``: A's static prefix is shorter than the minimum, so nothing of it was cached: nothing to break;
- ``kept``: B's static prefix starts with all of A's (B may only add after it);
- ``shortened``: they share at least the minimum, but less than all of A's: cache hits keep the
  shared tokens, the rest is written anew;
- ``broken``: they share less than the minimum: every request misses the cache until B's prefix
  is cached anew. ``breakwater prompts diff`` exits 1 (and with ``--strict``, on ``shortened`` too).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from breakwater.core.templates import Placeholder
from breakwater.engine.prompts.render import CompiledVersion

#: OpenAI's minimum cacheable prompt (and Anthropic's for most Claude models): the default
MIN_CACHEABLE_TOKENS = 1024

PrefixStatus = Literal["uncached", "kept", "shortened", "broken"]


def static_prefix(version: CompiledVersion) -> str:
    """What every request rendering ``version`` starts with: its messages up to the first placeholder."""
    parts: list[str] = []
    for role, segments in version.messages:
        parts.append(f"[{role}]\n")
        for segment in segments:
            if isinstance(segment, Placeholder):
                return "".join(parts)
            parts.append(segment)
        parts.append("\n")
    return "".join(parts)


def _common(a: Sequence[object], b: Sequence[object]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


@dataclass(frozen=True, slots=True)
class PrefixReport:
    """How B's static prefix compares with A's, in tokens and characters."""

    status: PrefixStatus
    #: tokens of A's and B's static prefixes
    a_tokens: int
    b_tokens: int
    #: tokens and characters the two share from the start
    common_tokens: int
    common_chars: int
    min_tokens: int

    def summary(self) -> str:
        """One line for a person (and a CI log)."""
        if self.status == "uncached":
            return (
                f"prefix uncached: A's static prefix is {self.a_tokens} tokens, under the {self.min_tokens}-token "
                "minimum, so nothing of it was cached"
            )
        if self.status == "kept":
            return f"prefix kept: B starts with all {self.a_tokens} tokens of A's static prefix (B's: {self.b_tokens})"
        if self.status == "shortened":
            return (
                f"prefix shortened at token {self.common_tokens} / character {self.common_chars}: cache hits keep "
                f"{self.common_tokens} of A's {self.a_tokens} static tokens"
            )
        return (
            f"prefix broken at token {self.common_tokens} / character {self.common_chars}: B shares less than "
            f"the {self.min_tokens}-token minimum of A's {self.a_tokens} static tokens, so every request misses "
            "the provider's prompt cache until B's prefix is cached"
        )


def compare_prefix(
    a: CompiledVersion,
    b: CompiledVersion,
    encode: Callable[[str], Sequence[int]],
    min_tokens: int = MIN_CACHEABLE_TOKENS,
) -> PrefixReport:
    """Compare two versions' static prefixes (``encode``: text -> token ids, the provider's tokenizer)."""
    text_a, text_b = static_prefix(a), static_prefix(b)
    tokens_a, tokens_b = encode(text_a), encode(text_b)
    common = _common(tokens_a, tokens_b)
    status: PrefixStatus
    if len(tokens_a) < min_tokens:
        status = "uncached"
    elif common >= len(tokens_a):
        status = "kept"
    elif common >= min_tokens:
        status = "shortened"
    else:
        status = "broken"
    return PrefixReport(status, len(tokens_a), len(tokens_b), common, _common(text_a, text_b), min_tokens)

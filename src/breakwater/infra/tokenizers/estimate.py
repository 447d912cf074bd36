"""A chat request's prompt tokens for one model family, offline: what the token-count endpoints and
``breakwater tokens`` answer.

The text is counted by the model family's tokenizer (``encoding_for``: exact for OpenAI models,
a documented estimate for Claude and Gemini); the framing around it by each family's rules:

- OpenAI (and anything not Claude): ``core/tokens.estimate_prompt_tokens``, OpenAI's chat framing
  (3 tokens priming the reply, 4 a message) and its image rule (765 tokens high detail, assuming
  1024x1024; 85 low detail);
- Claude: the same walk with Claude's image rule (``width * height / 750``, images scaled down
  to at most about 1.15 megapixels: at most about 1,600 tokens; the size is not read, so every
  image counts the maximum, an upper bound) and the tool-use system prompt Anthropic adds when
  a request has tools (346 tokens with ``tool_choice`` auto or none, 313 with any or a named
  tool: Anthropic's tool-use pricing table for Claude 4 models).

docs/api.md's token-count table measures these against reference tokenizers
(``bench/token_estimate_accuracy.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

from breakwater.core.tokens import estimate_prompt_tokens
from breakwater.core.types import ChatRequest, ImagePart
from breakwater.infra.tokenizers import Tokenizers, encoding_for

#: an image in a Claude prompt, at its largest (1092x1092 px / 750, Anthropic's vision docs)
CLAUDE_IMAGE = 1_600
#: Claude's tool-use system prompt: with tool_choice auto or none, and with any or a named tool
CLAUDE_TOOLS_AUTO, CLAUDE_TOOLS_FORCED = 346, 313


@dataclass(frozen=True, slots=True)
class Estimate:
    """A prompt's token count and how it was made."""

    tokens: int
    #: the tiktoken encoding that counted the text
    encoding: str
    #: the scale applied to its counts (1.1 for Claude)
    factor: float
    #: ``True`` when the encoding is the model's own tokenizer (OpenAI models on OpenAI or Azure)
    exact: bool
    #: whose rules framed the count: ``openai``, ``anthropic`` or ``gemini``
    family: str

    @property
    def tokenizer(self) -> str:
        """``o200k_base``, or ``cl100k_base x1.1`` for a scaled estimate."""
        return self.encoding if self.factor == 1.0 else f"{self.encoding} x{self.factor:g}"


def family_of(wire: str, host: str | None) -> str | None:
    """The ``provider`` ``encoding_for`` takes for a deployment: its wire, or an OpenAI host's name."""
    return host if wire == "openai" else wire


def _family(provider: str | None, model: str) -> str:
    """Whose framing rules apply, decided as ``encoding_for`` decides the encoding."""
    name = model.rsplit("/", 1)[-1].lower()
    if provider == "anthropic" or name.startswith("claude"):
        return "anthropic"
    if provider == "gemini" or name.startswith("gemini"):
        return "gemini"
    return "openai"


def _claude_image(part: ImagePart) -> int:
    return CLAUDE_IMAGE


def estimate_chat(tokenizers: Tokenizers, provider: str | None, model: str, request: ChatRequest) -> Estimate:
    """``request``'s prompt tokens for ``model`` on ``provider`` (loads the encoding if needed: may
    take a few hundred ms the first time, so async callers await ``tokenizers.load`` first)."""
    name, factor, exact = encoding_for(provider, model)
    count = tokenizers.counter(provider, model).count
    family = _family(provider, model)
    if family != "anthropic":
        return Estimate(estimate_prompt_tokens(request, count), name, factor, exact, family)
    tokens = estimate_prompt_tokens(request, count, _claude_image)
    if request.tools:
        forced = request.tool_choice is not None and request.tool_choice.mode in ("required", "named")
        tokens += CLAUDE_TOOLS_FORCED if forced else CLAUDE_TOOLS_AUTO
    return Estimate(tokens, name, factor, exact, family)


def estimate_text(tokenizers: Tokenizers, provider: str | None, model: str, text: str) -> Estimate:
    """Plain ``text``'s tokens for ``model`` on ``provider``, without any chat framing."""
    name, factor, exact = encoding_for(provider, model)
    return Estimate(tokenizers.counter(provider, model).count(text), name, factor, exact, _family(provider, model))

"""What the learned router is trained and measured on: one row per prompt, with what each model
got right and what each call costs.

Built by the CLI (``cli/router_data.py`` reads the CSVs, embeds the prompts and counts their
tokens); everything here is arrays, so training and evaluation never touch files or models.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np

from breakwater.core.pricing import Price, cost
from breakwater.core.types import Usage

__all__ = ["GPT4_TURBO_PRICE", "MIXTRAL_TOGETHER_PRICE", "Prices", "RoutingData"]

#: gpt-4-1106-preview, OpenAI's list price (USD per million tokens)
GPT4_TURBO_PRICE = Price(input=Decimal(10), output=Decimal(30))
#: Mixtral-8x7B-Instruct on Together AI, its published serverless price (USD per million tokens)
MIXTRAL_TOGETHER_PRICE = Price(input=Decimal("0.6"), output=Decimal("0.6"))

Floats = np.ndarray[Any, np.dtype[np.float64]]
Bools = np.ndarray[Any, np.dtype[np.bool_]]
Ints = np.ndarray[Any, np.dtype[np.int64]]


@dataclass(frozen=True, slots=True)
class Prices:
    strong: Price = GPT4_TURBO_PRICE
    weak: Price = MIXTRAL_TOGETHER_PRICE


@dataclass(frozen=True, slots=True)
class RoutingData:
    """Rows of prompts: embedding, topic, both models' correctness and token counts."""

    vectors: np.ndarray[Any, np.dtype[np.float32]]  # (rows, dimensions), unit length
    topics: Ints  # (rows,) index into topic_names: the file a row came from
    topic_names: tuple[str, ...]
    strong_correct: Bools
    weak_correct: Bools
    prompt_tokens: Ints
    strong_output_tokens: Ints
    weak_output_tokens: Ints
    #: the prompts' text, for the lexical topic classifier (None: embedding only)
    texts: tuple[str, ...] | None = None

    def __len__(self) -> int:
        return int(self.vectors.shape[0])

    def subset(self, rows: Ints | Bools) -> RoutingData:
        return RoutingData(
            self.vectors[rows],
            self.topics[rows],
            self.topic_names,
            self.strong_correct[rows],
            self.weak_correct[rows],
            self.prompt_tokens[rows],
            self.strong_output_tokens[rows],
            self.weak_output_tokens[rows],
            None if self.texts is None else tuple(self.texts[i] for i in np.arange(len(self))[rows]),
        )

    @property
    def strong_needed(self) -> Bools:
        """The strong model was right where the weak one was wrong: the only rows it improves."""
        return self.strong_correct & ~self.weak_correct

    def costs(self, prices: Prices) -> tuple[Floats, Floats]:
        """Each row's cost (USD) on the strong model and on the weak one (``core.pricing.cost``)."""
        strong = [
            float(cost(Usage(input_tokens=int(p), output_tokens=int(o)), prices.strong).total)
            for p, o in zip(self.prompt_tokens, self.strong_output_tokens, strict=True)
        ]
        weak = [
            float(cost(Usage(input_tokens=int(p), output_tokens=int(o)), prices.weak).total)
            for p, o in zip(self.prompt_tokens, self.weak_output_tokens, strict=True)
        ]
        return np.asarray(strong, dtype=np.float64), np.asarray(weak, dtype=np.float64)

"""The learned router: a small model that says when a route's cheap (weak) branch will do.

The model is a topic mixture. A softmax over the prompt's embedding says which topic it is
(the topics are the training files, e.g. MMLU's domains, or k-means clusters of a single file),
and each topic carries how often, in training, the strong model was right where the weak one was
wrong ("strong needed"). ``P(strong needed | x) = sum_t P(t | x) * rate_t``; the score is
``1 - P(strong needed)``: the probability that the cheap answer suffices. A prompt where both
models fail gains nothing from the strong model, so it does not count as needing it.

Given the prompt's text too, a second softmax on its words (``LexicalModel``: TF-IDF over
``terms``) is blended into the topic logits; on MMLU it names the right domain 74% of the time
against the embedding's 69% (docs/routing.md). Without text the embedding decides alone.

Cost weighting: the strong model's extra cost grows with the prompt, so the same risk is worth
more money on a long prompt. ``score(vector, prompt_tokens)`` scales ``P(strong needed)`` by
``extra_cost(reference_tokens) / extra_cost(prompt_tokens)`` (``reference_tokens`` is the
training prompts' median): for a prompt of typical length it is the probability itself, longer
prompts lean cheap, shorter ones lean strong. Sending the prompts with the most expected gain per
extra dollar to the strong model is what makes the cost curve steep (docs/routing.md).

The artifact is one JSON file (``FORMAT``); nothing is pickled. numpy is imported here (the
``semantic`` extra); scikit-learn only by ``training.py``, and only while fitting.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "FORMAT",
    "CostWeighting",
    "LearnedRouter",
    "LexicalModel",
    "RouterArtifactError",
    "TopicModel",
    "load_router",
    "save_router",
    "terms",
]

FORMAT = "breakwater-router/2"

Vector = np.ndarray[Any, np.dtype[np.floating[Any]]]


class RouterArtifactError(Exception):
    """A router artifact that cannot be used: missing, not JSON, another version, or malformed."""


_WORD = re.compile(r"[a-z0-9]+")


def terms(text: str) -> list[str]:
    """The lexical model's terms of a text: lowercased ``[a-z0-9]+`` words, then word bigrams.

    Training passes this very function to scikit-learn as the analyzer, so serving and training
    tokenise alike.
    """
    words = _WORD.findall(text.lower())
    return words + [f"{a} {b}" for a, b in itertools.pairwise(words)]


@dataclass(frozen=True, slots=True)
class LexicalModel:
    """A second topic classifier, on the prompt's words: TF-IDF (sublinear tf, L2) and a softmax.

    Its logits are blended with the embedding's: ``embedding_weight * emb + lexical_weight * lex``
    (a weighted product of the two classifiers' probabilities).
    """

    vocabulary: dict[str, int]  # term -> column
    idf: np.ndarray[Any, np.dtype[np.float64]]  # (terms,)
    weights: np.ndarray[Any, np.dtype[np.float64]]  # (topics, terms)
    bias: np.ndarray[Any, np.dtype[np.float64]]  # (topics,)
    embedding_weight: float
    lexical_weight: float

    def logits(self, text: str) -> np.ndarray[Any, np.dtype[np.float64]]:
        """The topics' logits for ``text`` (the bias alone when no term is known)."""
        counts: dict[int, int] = {}
        for term in terms(text):
            column = self.vocabulary.get(term)
            if column is not None:
                counts[column] = counts.get(column, 0) + 1
        if not counts:
            return self.bias.copy()
        columns = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
        tf = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))
        values = (1.0 + np.log(tf)) * self.idf[columns]
        values /= np.sqrt(values @ values)
        return self.weights[:, columns] @ values + self.bias


@dataclass(frozen=True, slots=True)
class TopicModel:
    """Softmax over topics (``weights`` @ x + ``bias``), each topic with its "strong needed" rate.

    With ``lexical``, and the prompt's text, the logits are blended with the lexical classifier's.
    """

    topics: tuple[str, ...]
    weights: np.ndarray[Any, np.dtype[np.float64]]  # (topics, dimensions)
    bias: np.ndarray[Any, np.dtype[np.float64]]  # (topics,)
    rates: np.ndarray[Any, np.dtype[np.float64]]  # (topics,), each in [0, 1]
    lexical: LexicalModel | None = None

    @property
    def dimensions(self) -> int:
        return int(self.weights.shape[1])

    def strong_needed(self, vector: Vector, text: str | None = None) -> float:
        """P(strong right and weak wrong | the prompt's embedding, and its text when given)."""
        logits = self.weights @ vector + self.bias
        if text is not None and self.lexical is not None:
            logits = self.lexical.embedding_weight * logits + self.lexical.lexical_weight * self.lexical.logits(text)
        logits -= logits.max()
        odds = np.exp(logits)
        return float(odds @ self.rates / odds.sum())


@dataclass(frozen=True, slots=True)
class CostWeighting:
    """The strong branch's extra cost per prompt: ``input_gap * tokens + output_gap`` (USD)."""

    input_gap: float  # USD a prompt token costs more on the strong model
    output_gap: float  # USD the expected answer costs more on the strong model
    reference_tokens: float  # the training prompts' median length: weight 1 there

    def weight(self, prompt_tokens: float) -> float:
        """How much cheaper the strong model's risk looks at this length (1 at the reference)."""
        extra = self.input_gap * max(prompt_tokens, 0.0) + self.output_gap
        reference = self.input_gap * self.reference_tokens + self.output_gap
        return reference / extra if extra > 0 else 1.0


@dataclass(frozen=True, slots=True)
class LearnedRouter:
    """A loaded artifact. Route to the cheap branch when ``score(...) >= threshold``.

    Attributes:
        embedder_identity: the embedder the model was trained with (vectors must come from it).
        threshold: the operating point chosen at training time (see ``metadata["threshold_rule"]``).
        format: ``FORMAT``.
    """

    embedder_identity: str
    threshold: float
    model: TopicModel
    cost: CostWeighting | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    format: str = FORMAT

    def strong_needed(self, vector: Vector, text: str | None = None) -> float:
        """P(strong needed | vector, text); see ``score`` for what a bad vector gives."""
        x = np.asarray(vector, dtype=np.float64).reshape(-1)
        if x.shape[0] != self.model.dimensions or not np.all(np.isfinite(x)):
            return 1.0
        if text is not None and not isinstance(text, str):
            text = None
        needed = self.model.strong_needed(x, text)
        return min(max(needed, 0.0), 1.0) if math.isfinite(needed) else 1.0

    def score(self, vector: Vector, prompt_tokens: int | None = None, text: str | None = None) -> float:
        """How safe the cheap branch is, in [0, 1]; the gateway goes cheap when ``>= threshold``.

        Without ``prompt_tokens``: the probability that the cheap answer suffices. With it (and a
        cost-weighted artifact): that probability for a prompt of typical length, higher for
        longer prompts, lower for shorter ones; ``threshold`` was chosen for this form, so pass
        the prompt's tokens (the gateway's offline count) when you have them.

        Never raises. A vector of the wrong dimension or with a NaN/inf scores 0.0 (strong branch:
        the safe answer when the input cannot be trusted). A finite vector that is not unit-length
        still scores (the model is a softmax over dot products; scale changes its confidence).

        With ``text`` (and an artifact with a lexical model) the topic is told from the embedding
        and the prompt's words together, as at training, where ``threshold`` was chosen; without
        it, from the embedding alone (a fallback: the threshold was not chosen for it).

        Args:
            vector: the prompt's embedding by ``embedder_identity`` (unit length).
            prompt_tokens: the prompt's token count, for cost weighting.
            text: the prompt text ``vector`` was computed from, for the lexical model.
        """
        needed = self.strong_needed(vector, text)
        if prompt_tokens is not None and self.cost is not None:
            needed *= self.cost.weight(prompt_tokens)
        return min(max(1.0 - needed, 0.0), 1.0)

    def to_json(self) -> dict[str, Any]:
        """The artifact as a JSON object (``FORMAT``)."""
        return {
            "format": self.format,
            "embedder": self.embedder_identity,
            "threshold": self.threshold,
            "model": {
                "kind": "topic-mixture",
                "topics": list(self.model.topics),
                "weights": self.model.weights.tolist(),
                "bias": self.model.bias.tolist(),
                "rates": self.model.rates.tolist(),
                "lexical": None if self.model.lexical is None else _lexical_json(self.model.lexical),
            },
            "cost_weighting": None
            if self.cost is None
            else {
                "input_gap_usd": self.cost.input_gap,
                "output_gap_usd": self.cost.output_gap,
                "reference_tokens": self.cost.reference_tokens,
            },
            "metadata": self.metadata,
        }


def _lexical_json(lexical: LexicalModel) -> dict[str, Any]:
    ordered = sorted(lexical.vocabulary, key=lexical.vocabulary.__getitem__)
    return {
        "kind": "tfidf-softmax",
        "terms": ordered,
        "idf": lexical.idf.tolist(),
        "weights": lexical.weights.tolist(),
        "bias": lexical.bias.tolist(),
        "embedding_weight": lexical.embedding_weight,
        "lexical_weight": lexical.lexical_weight,
    }


def save_router(router: LearnedRouter, path: str | Path) -> None:
    """Write ``router`` as a JSON artifact (written whole to a sibling file, then renamed)."""
    target = Path(path)
    partial = target.with_name(target.name + ".partial")
    partial.write_text(json.dumps(router.to_json(), separators=(",", ":")) + "\n", encoding="utf-8")
    partial.replace(target)


def load_router(path: str | Path) -> LearnedRouter:
    """Read an artifact written by ``save_router``.

    Raises:
        RouterArtifactError: the file is missing or unreadable, not JSON, of another format
            version, or has a missing or malformed field (the message names which).
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RouterArtifactError(f"router artifact {path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RouterArtifactError(f"router artifact {path}: cannot read it ({exc})") from None
    try:
        body = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RouterArtifactError(f"router artifact {path}: not JSON ({exc})") from None
    if not isinstance(body, dict):
        raise RouterArtifactError(f"router artifact {path}: not a JSON object")
    found = body.get("format")
    if found != FORMAT:
        raise RouterArtifactError(
            f"router artifact {path}: format {found!r} is an artifact of another version; this Breakwater reads {FORMAT!r}"
        )
    try:
        return _parse(body)
    except (KeyError, TypeError, ValueError) as exc:
        raise RouterArtifactError(f"router artifact {path}: malformed ({exc})") from None


def _parse(body: dict[str, Any]) -> LearnedRouter:
    model = body["model"]
    if model.get("kind") != "topic-mixture":
        raise ValueError(f"model.kind {model.get('kind')!r} is not 'topic-mixture'")
    weights = np.asarray(model["weights"], dtype=np.float64)
    bias = np.asarray(model["bias"], dtype=np.float64)
    rates = np.asarray(model["rates"], dtype=np.float64)
    topics = tuple(str(t) for t in model["topics"])
    if weights.ndim != 2 or weights.shape[0] == 0 or weights.shape[1] == 0:
        raise ValueError(f"model.weights must be a non-empty matrix, not of shape {weights.shape}")
    if bias.shape != (weights.shape[0],) or rates.shape != bias.shape or len(topics) != len(bias):
        raise ValueError("model.topics, model.bias and model.rates must each have one entry per row of model.weights")
    if not (np.all(np.isfinite(weights)) and np.all(np.isfinite(bias))):
        raise ValueError("model.weights and model.bias must be finite numbers")
    if not np.all((rates >= 0) & (rates <= 1)):
        raise ValueError("model.rates must be in [0, 1]")
    threshold = float(body["threshold"])
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold {threshold} is not in [0, 1]")
    embedder = body["embedder"]
    if not isinstance(embedder, str) or not embedder:
        raise ValueError("embedder must be a non-empty string")
    cost = None
    if body.get("cost_weighting") is not None:
        raw = body["cost_weighting"]
        cost = CostWeighting(float(raw["input_gap_usd"]), float(raw["output_gap_usd"]), float(raw["reference_tokens"]))
        if not all(math.isfinite(v) and v >= 0 for v in (cost.input_gap, cost.output_gap, cost.reference_tokens)):
            raise ValueError("cost_weighting values must be finite and not negative")
    lexical = None if model.get("lexical") is None else _parse_lexical(model["lexical"], len(topics))
    metadata = body.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise ValueError("metadata must be an object")
    return LearnedRouter(
        embedder_identity=embedder,
        threshold=threshold,
        model=TopicModel(topics, weights, bias, rates, lexical),
        cost=cost,
        metadata=metadata,
    )


def _parse_lexical(raw: dict[str, Any], topics: int) -> LexicalModel:
    if raw.get("kind") != "tfidf-softmax":
        raise ValueError(f"model.lexical.kind {raw.get('kind')!r} is not 'tfidf-softmax'")
    vocabulary = {str(term): i for i, term in enumerate(raw["terms"])}
    idf = np.asarray(raw["idf"], dtype=np.float64)
    weights = np.asarray(raw["weights"], dtype=np.float64)
    bias = np.asarray(raw["bias"], dtype=np.float64)
    if len(vocabulary) != len(raw["terms"]) or not vocabulary:
        raise ValueError("model.lexical.terms must be distinct and not empty")
    if idf.shape != (len(vocabulary),) or weights.shape != (topics, len(vocabulary)) or bias.shape != (topics,):
        raise ValueError("model.lexical: idf needs one entry per term, weights and bias one row per topic")
    if not (
        np.all(np.isfinite(idf)) and np.all(idf > 0) and np.all(np.isfinite(weights)) and np.all(np.isfinite(bias))
    ):
        raise ValueError("model.lexical: idf must be positive, weights and bias finite")
    blend = (float(raw["embedding_weight"]), float(raw["lexical_weight"]))
    if not all(math.isfinite(v) and v >= 0 for v in blend):
        raise ValueError("model.lexical: embedding_weight and lexical_weight must be finite and not negative")
    return LexicalModel(vocabulary, idf, weights, bias, *blend)

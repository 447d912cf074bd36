"""Reading ``breakwater router`` training and test CSVs into ``engine/router/dataset.RoutingData``.

A CSV has a ``prompt`` column and one True/False correctness column per model (named by the
model, e.g. ``gpt-4-1106-preview``), optionally ``<model>_response`` columns with each model's
answer. Each file is one topic (MMLU ships one file per domain). Prompt and response tokens are
counted with the shipped ``cl100k_base`` encoding for both models: exact for gpt-4-1106-preview,
an estimate for Mixtral (its own tokenizer is not shipped; the estimate only moves the weak
model's already small cost). A file without response columns counts ``output_tokens`` per answer
(MMLU's answer is one letter: 1).
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from breakwater.engine.router.dataset import RoutingData
from breakwater.infra.cache.wordllama import WordLlamaEmbedder
from breakwater.infra.tokenizers import load_encoding

__all__ = ["DataError", "Rows", "embed_rows", "read_rows"]

_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no"}


class DataError(Exception):
    """A CSV that cannot be used: missing, unreadable, or without the columns asked for."""


@dataclass(frozen=True, slots=True)
class Rows:
    """The CSV rows before embedding: prompts, correctness, output tokens, topic per row."""

    prompts: list[str]
    strong_correct: list[bool]
    weak_correct: list[bool]
    strong_output_tokens: list[int]
    weak_output_tokens: list[int]
    topics: list[int]
    topic_names: tuple[str, ...]
    #: file name -> sha256 of its bytes
    sources: dict[str, str]


def _flag(value: str, column: str, where: str) -> bool:
    text = value.strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise DataError(f"{where}: column {column!r} holds {value!r}, not True/False")


def read_rows(paths: list[str], strong: str, weak: str, output_tokens: int) -> Rows:
    """Every row of these CSVs (each file a topic). Raises: DataError."""
    encoding = load_encoding("cl100k_base")
    prompts: list[str] = []
    correct: dict[str, list[bool]] = {strong: [], weak: []}
    answers: dict[str, list[int]] = {strong: [], weak: []}
    topics: list[int] = []
    names: list[str] = []
    sources: dict[str, str] = {}
    for topic, name in enumerate(paths):
        path = Path(name)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            raise DataError(f"{name}: no such file") from None
        except OSError as exc:
            raise DataError(f"{name}: cannot read it ({exc})") from None
        sources[path.name] = hashlib.sha256(raw).hexdigest()
        names.append(path.stem)
        try:
            reader = csv.DictReader(raw.decode("utf-8-sig").splitlines(keepends=True))
            header = reader.fieldnames or []
            rows = list(reader)
        except (UnicodeDecodeError, csv.Error) as exc:
            raise DataError(f"{name}: not a UTF-8 CSV ({exc})") from None
        for column in ("prompt", strong, weak):
            if column not in header:
                raise DataError(f"{name}: no column {column!r} (columns: {', '.join(header)})")
        for line, row in enumerate(rows, start=2):
            prompts.append(row["prompt"] or "")
            topics.append(topic)
            for model in (strong, weak):
                correct[model].append(_flag(row[model] or "", model, f"{name}:{line}"))
                response = row.get(f"{model}_response")
                answers[model].append(output_tokens if response is None else len(encoding.encode_ordinary(response)))
    if not prompts:
        raise DataError(f"no rows in {', '.join(paths)}")
    return Rows(
        prompts,
        correct[strong],
        correct[weak],
        answers[strong],
        answers[weak],
        topics,
        tuple(names),
        sources,
    )


def embed_rows(rows: Rows, embedder: WordLlamaEmbedder) -> RoutingData:
    """Embed the prompts (in batches) and count their tokens."""
    encoding = load_encoding("cl100k_base")
    vectors = np.concatenate([embedder.embed_many(rows.prompts[i : i + 512]) for i in range(0, len(rows.prompts), 512)])
    tokens = [len(t) for t in encoding.encode_ordinary_batch(rows.prompts)]
    return RoutingData(
        vectors=vectors,
        topics=np.asarray(rows.topics, dtype=np.int64),
        topic_names=rows.topic_names,
        strong_correct=np.asarray(rows.strong_correct, dtype=bool),
        weak_correct=np.asarray(rows.weak_correct, dtype=bool),
        prompt_tokens=np.asarray(tokens, dtype=np.int64),
        strong_output_tokens=np.asarray(rows.strong_output_tokens, dtype=np.int64),
        weak_output_tokens=np.asarray(rows.weak_output_tokens, dtype=np.int64),
        texts=tuple(rows.prompts),
    )

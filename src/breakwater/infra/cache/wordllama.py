"""The semantic cache's local embedder: WordLlama's static 256-dimension model, shipped in its wheel.

Why this model: it runs on the CPU with no network and no download, in about 50 us a question
on one core (a token lookup and a weighted average, no transformer), and its weights (16 MB)
and tokenizer come inside the ``wordllama`` package (MIT licence), so nothing is fetched at run
time. On the QQP duplicate-question pairs it separates duplicates from related non-duplicates
with a ROC AUC of 0.82 (docs/caching.md has the table); a transformer such as all-MiniLM-L6-v2
does better (about 0.87) but costs ~9 ms a question on this machine's core, above the
semantic lookup's 5 ms budget.

WordLlama's loader looks for the bundled tokenizer under a ``tokenizer/`` directory while the
wheel ships it in ``tokenizers/``, and would then try Hugging Face; pointing its cache directory
at the package itself and disabling downloads makes it take the bundled files and never reach
for the network. Loading takes ~0.3 s: ``load`` is run in a thread at start-up.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

DIMENSIONS = 256


class EmbedderUnavailable(Exception):
    """The optional ``wordllama`` package is not installed (``pip install 'breakwater[semantic]'``)."""


class WordLlamaEmbedder:
    """``engine/cache/semantic.Embedder`` in this process: ``embed`` never waits (``embed_now``
    is the same without a coroutine, for scripts)."""

    dimensions = DIMENSIONS
    identity = f"local:wordllama-l2-supercat-{DIMENSIONS}"

    def __init__(self) -> None:
        self._model: Any = None

    def load(self) -> None:
        """Load the bundled model (blocking: run it in a thread). Raises: EmbedderUnavailable."""
        if self._model is not None:
            return
        try:
            import wordllama
            from wordllama import WordLlama
        except ImportError as exc:
            raise EmbedderUnavailable(
                "the semantic cache needs the 'wordllama' package: pip install 'breakwater[semantic]'"
            ) from exc
        bundled = Path(wordllama.__file__).parent
        self._model = WordLlama.load(cache_dir=bundled, disable_download=True, dim=DIMENSIONS)

    async def embed(self, text: str, regions: frozenset[str] | None = None) -> np.ndarray[Any, np.dtype[np.float32]]:
        return self.embed_now(text)  # in process: the text goes to no region

    def embed_now(self, text: str) -> np.ndarray[Any, np.dtype[np.float32]]:
        """``text`` as a unit vector (float32)."""
        if self._model is None:
            raise RuntimeError("WordLlamaEmbedder.load() was not called")
        vector = self._model.embed([text], norm=True)[0]
        return np.asarray(vector, dtype=np.float32)

    def embed_many(self, texts: list[str]) -> np.ndarray[Any, np.dtype[np.float32]]:
        """Each text as a unit vector, one row each (float32): one batched call, for training."""
        if self._model is None:
            raise RuntimeError("WordLlamaEmbedder.load() was not called")
        if not texts:
            return np.zeros((0, DIMENSIONS), dtype=np.float32)
        return np.asarray(self._model.embed(texts, norm=True), dtype=np.float32).reshape(len(texts), DIMENSIONS)

"""The semantic cache's index: the last user turn's embedding, looked up within its scope.

A semantic hit needs three things (docs/caching.md):

1. the same **scope**: everything of the request but the last user turn's text (route
   fingerprint, tenant, system prompt, every earlier turn, tools, response format, sampling
   parameters: ``semantic_scope.scope_of``), hashed. A question asked under another system prompt, after
   another conversation, with other tools or by another tenant is never compared at all;
2. a **similarity** (cosine of the normalised embeddings) at or above the route's threshold with
   a question stored in that scope;
3. the **verifier** (``verify.py``) passing for the pair: same numbers, negation, order of
   numbers and units, identifiers, no antonym swapped in.

The index holds, per scope, a matrix of embeddings (float32, one row per stored question), the
questions' text (for the verifier) and the exact-cache key their answer is stored under: the
answer itself lives in the ``CacheStore`` with every other entry, and expires there. A row whose
answer is gone is dropped when a lookup finds it. The index is bounded (``max_entries``, the
oldest out first) and lives in this process (several replicas each learn their own questions;
the answers they store are shared through Redis all the same).

This module imports numpy, so it is imported only by a runtime with a semantic route.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from breakwater.engine.cache.verify import Verifier, read

#: float32 rows; 256 dimensions for the bundled model
Vector = np.ndarray[Any, np.dtype[np.float32]]


class Embedder(Protocol):
    """Text to a unit-length vector: the bundled local model (``infra/cache/wordllama.py``) or an
    embeddings route of this gateway (``gateway_embedder.py``)."""

    #: what its vectors are comparable with: an index filled by another embedder is not kept
    identity: str

    async def embed(self, text: str, regions: frozenset[str] | None = None) -> Vector:
        """Raises: EmbedderFailed (``semantic_scope.py``). ``regions``: where the text may be sent
        (data residency, ``core/regions.py``); a local model sends it nowhere."""
        ...


#: similar stored questions tried against the verifier, closest first
CANDIDATES = 5


@dataclass(slots=True)
class Match:
    key: str
    similarity: float
    question: str


class _Scope:
    """One scope's rows: a matrix grown in blocks, and each row's key and question."""

    __slots__ = ("index", "keys", "matrix", "questions", "rows")

    def __init__(self, dimensions: int) -> None:
        self.matrix: Vector = np.zeros((8, dimensions), dtype=np.float32)
        self.rows = 0
        self.keys: list[str] = []
        self.questions: list[str] = []
        self.index: dict[str, int] = {}  # key -> its row

    def add(self, vector: Vector, key: str, question: str) -> None:
        if key in self.index:
            return
        if self.rows == len(self.matrix):
            self.matrix = np.concatenate([self.matrix, np.zeros_like(self.matrix)])
        self.matrix[self.rows] = vector
        self.index[key] = self.rows
        self.rows += 1
        self.keys.append(key)
        self.questions.append(question)

    def remove(self, key: str) -> None:
        i = self.index.pop(key, None)
        if i is None:
            return
        last = self.rows - 1
        if i != last:  # the last row takes the freed place
            self.matrix[i] = self.matrix[last]
            self.keys[i], self.questions[i] = self.keys[last], self.questions[last]
            self.index[self.keys[i]] = i
        self.keys.pop()
        self.questions.pop()
        self.rows = last


class SemanticIndex:
    """Stored questions by scope, looked up by similarity and the verifier.

    Vectors come from the caller (the stage's embedder): the index only compares them. All rows
    have the dimension of the first one added; a vector of another dimension is never added nor
    matched.

    Args:
        verifier: the check a similar pair must pass.
        max_entries: rows in all scopes together; past it the scope used longest ago loses its
            oldest row.
    """

    def __init__(self, verifier: Verifier | None = None, max_entries: int = 100_000, identity: str = "") -> None:
        #: the embedder its vectors came from (``Embedder.identity``)
        self.identity = identity
        #: the rows' dimension, from the first vector added
        self.dimensions: int | None = None
        self.verifier = verifier or Verifier()
        self.max_entries = max_entries
        self.entries = 0
        self._scopes: OrderedDict[str, _Scope] = OrderedDict()
        #: told of every question this process indexes (the replicas' shared feed), when set
        self.on_add: Callable[[str, str, str, Vector], None] | None = None

    def add(self, scope: str, question: str, key: str, vector: Vector, *, share: bool = True) -> None:
        """Remember that ``question`` (embedded as ``vector``) in ``scope`` is answered by the entry
        under ``key``; ``share``: tell ``on_add`` (not for a question learned from another replica)."""
        if self.dimensions is None:
            self.dimensions = len(vector)
        elif vector.shape != (self.dimensions,):
            return
        rows = self._scopes.get(scope)
        if rows is None:
            rows = self._scopes[scope] = _Scope(self.dimensions)
        self._scopes.move_to_end(scope)
        before = rows.rows
        rows.add(vector, key, question)
        self.entries += rows.rows - before
        if share and self.on_add is not None and rows.rows > before:
            self.on_add(scope, question, key, vector)
        while self.entries > self.max_entries:
            oldest_scope = next(iter(self._scopes.values()))
            oldest_scope.remove(oldest_scope.keys[0])
            self.entries -= 1
            if oldest_scope.rows == 0:
                self._scopes.popitem(last=False)

    def match(self, scope: str, question: str, vector: Vector, threshold: float) -> Match | None:
        """The most similar stored question at or above ``threshold`` that the verifier passes."""
        rows = self._scopes.get(scope)
        if rows is None or rows.rows == 0 or vector.shape != (self.dimensions,):
            return None
        self._scopes.move_to_end(scope)
        similarities = rows.matrix[: rows.rows] @ vector
        best = np.flatnonzero(similarities >= threshold)
        if len(best) > CANDIDATES:  # the closest few only, in order: the closest may fail the verifier
            best = best[np.argpartition(-similarities[best], CANDIDATES)[:CANDIDATES]]
        mine = read(question)
        for i in best[np.argsort(-similarities[best])]:
            if self.verifier.compare(mine, read(rows.questions[i])) is None:
                return Match(rows.keys[i], float(similarities[i]), rows.questions[i])
        return None

    def forget(self, scope: str, key: str) -> None:
        """The answer under ``key`` is gone from the store: drop its row."""
        rows = self._scopes.get(scope)
        if rows is not None and key in rows.index:
            rows.remove(key)
            self.entries -= 1

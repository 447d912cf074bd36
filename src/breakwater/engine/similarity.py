"""How alike two texts are: the cosine similarity of their embeddings by the configured embedder
(``cache.embedder``). Shadow comparisons and the eval assertion ``similar`` both use it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from breakwater.core.regions import Regions, narrow

if TYPE_CHECKING:
    from breakwater.engine.cache.semantic import Embedder

#: (a, b) -> cosine similarity rounded to 4 places, or ``None`` when it cannot be computed
Similarity = Callable[[str, str], Awaitable[float | None]]


def held_to(similarity: Similarity, regions: Regions) -> Similarity:
    """``similarity`` for a request restricted to ``regions`` (data residency): its embedder's
    calls go only there. Unrestricted, or not an embedder's: ``similarity`` itself."""
    if regions is None or not isinstance(similarity, _EmbeddingSimilarity):
        return similarity
    return _EmbeddingSimilarity(similarity.embedder, narrow(similarity.regions, regions))


def similarity_by(embedder: Embedder) -> Similarity:
    """The cosine similarity of two texts' embeddings, rounded to 4 places (``None`` when either
    cannot be embedded: an empty answer, the embedder's route down)."""
    return _EmbeddingSimilarity(embedder, None)


class _EmbeddingSimilarity:
    """``similarity_by``'s comparison, its embedder's calls held to ``regions``."""

    __slots__ = ("embedder", "regions")

    def __init__(self, embedder: Embedder, regions: Regions) -> None:
        self.embedder = embedder
        self.regions = regions

    async def __call__(self, a: str, b: str) -> float | None:
        import numpy as np

        if not a.strip() or not b.strip():
            return None
        embedder, regions = self.embedder, self.regions
        try:
            va, vb = await embedder.embed(a, regions), await embedder.embed(b, regions)
        except Exception:  # noqa: BLE001 - a comparison that cannot be made is left empty
            return None
        norm = float(np.linalg.norm(va) * np.linalg.norm(vb))
        return None if norm == 0.0 else round(float(np.dot(va, vb)) / norm, 4)

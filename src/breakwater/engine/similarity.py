"""How alike two texts are: the cosine similarity of their embeddings by the configured embedder
(``cache.embedder``). Shadow comparisons and the eval assertion ``similar`` both use it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from breakwater.engine.cache.semantic import Embedder

#: (a, b) -> cosine similarity rounded to 4 places, or ``None`` when it cannot be computed
Similarity = Callable[[str, str], Awaitable[float | None]]


def similarity_by(embedder: Embedder) -> Similarity:
    """The cosine similarity of two texts' embeddings, rounded to 4 places (``None`` when either
    cannot be embedded: an empty answer, the embedder's route down)."""

    async def similarity(a: str, b: str) -> float | None:
        import numpy as np

        if not a.strip() or not b.strip():
            return None
        try:
            va, vb = await embedder.embed(a), await embedder.embed(b)
        except Exception:  # noqa: BLE001 - a comparison that cannot be made is left empty
            return None
        norm = float(np.linalg.norm(va) * np.linalg.norm(vb))
        return None if norm == 0.0 else round(float(np.dot(va, vb)) / norm, 4)

    return similarity

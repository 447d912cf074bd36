"""Shadow comparisons and ``similar`` assertions embed through the cache's embedder: for a
restricted request, that embedder is told the request's regions (``engine/similarity.held_to``)."""

from __future__ import annotations

import numpy as np

from breakwater.engine.similarity import held_to, similarity_by


class Recording:
    """An embedder that notes the regions each call was held to."""

    identity = "recording"

    def __init__(self) -> None:
        self.regions: list[frozenset[str] | None] = []

    async def embed(self, text: str, regions: frozenset[str] | None = None) -> np.ndarray:
        self.regions.append(regions)
        return np.asarray([1.0, float(len(text))], dtype=np.float32)


async def test_a_restricted_comparison_embeds_in_the_region_only() -> None:
    embedder = Recording()
    similarity = similarity_by(embedder)
    assert await similarity("a", "b") is not None
    assert await held_to(similarity, frozenset({"eu"}))("a", "bb") is not None
    assert embedder.regions == [None, None, frozenset({"eu"}), frozenset({"eu"})]


async def test_unrestricted_or_not_an_embedders_it_is_itself() -> None:
    similarity = similarity_by(Recording())
    assert held_to(similarity, None) is similarity

    async def fixed(a: str, b: str) -> float | None:
        return 0.5

    assert held_to(fixed, frozenset({"eu"})) is fixed

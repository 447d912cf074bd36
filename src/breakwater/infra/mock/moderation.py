"""The mock's moderation classifier: OpenAI's ``moderation`` object, decided by a few keywords.

Deterministic, so tests can ask for either verdict: a text containing one of a category's
keywords is flagged in that category (score 0.9), everything else scores 0.001. Images are never
flagged. The categories are those of ``omni-moderation-latest`` (OpenAI's API reference,
"Moderations", checked 2026-12), each with the input types it applies to.
"""

from __future__ import annotations

from typing import Any

import orjson

from breakwater.providers.openai_moderations import ModerationRequest

#: category -> the input types the classifier reads for it (text only, or text and images)
CATEGORIES: dict[str, tuple[str, ...]] = {
    "harassment": ("text",),
    "harassment/threatening": ("text",),
    "hate": ("text",),
    "hate/threatening": ("text",),
    "illicit": ("text",),
    "illicit/violent": ("text",),
    "self-harm": ("text", "image"),
    "self-harm/intent": ("text", "image"),
    "self-harm/instructions": ("text", "image"),
    "sexual": ("text", "image"),
    "sexual/minors": ("text",),
    "violence": ("text", "image"),
    "violence/graphic": ("text", "image"),
}
#: the words that flag a category in the mock
KEYWORDS: dict[str, tuple[str, ...]] = {
    "violence": ("kill", "attack"),
    "harassment": ("idiot",),
    "hate": ("hateful",),
    "illicit": ("steal",),
    "self-harm": ("hurt myself",),
}
FLAGGED_SCORE, CLEAN_SCORE = 0.9, 0.001


def moderation_body(request: ModerationRequest, response_id: str) -> bytes:
    """OpenAI's answer to ``request``: one result for all of its inputs (as OpenAI answers an
    array of multimodal parts) or one per string."""
    texts = request.texts
    raw_input = request.raw.get("input")
    multimodal = isinstance(raw_input, list) and any(isinstance(v, dict) for v in raw_input)
    groups = [texts] if multimodal else [[t] for t in texts]
    results = [_result(group) for group in groups]
    return orjson.dumps({"id": response_id, "model": request.model, "results": results})


def _result(inputs: list[str | None]) -> dict[str, Any]:
    text = " ".join(t for t in inputs if t is not None).lower()
    has_image = any(t is None for t in inputs)
    hit = {name for name, words in KEYWORDS.items() if any(w in text for w in words)}
    categories = {name: name in hit for name in CATEGORIES}
    scores = {name: FLAGGED_SCORE if name in hit else CLEAN_SCORE for name in CATEGORIES}
    applied = {name: [kind for kind in kinds if kind == "text" or has_image] for name, kinds in CATEGORIES.items()}
    return {
        "flagged": bool(hit),
        "categories": categories,
        "category_scores": scores,
        "category_applied_input_types": applied,
    }

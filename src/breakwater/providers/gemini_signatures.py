"""Gemini's thought signatures, carried in canonical tool call ids.

Thought signatures (Gemini API docs, "Thought signatures"): Gemini 3 rejects a function-call
history unless each model turn's first ``functionCall`` part carries the ``thoughtSignature`` it
came with. Canonical tool calls have no field for it, so it rides in the tool call id
(``<id>__thought__<url-safe base64>``) and is split off on the way back; calls made by another
model get the documented ``skip_thought_signature_validator`` value instead.

Both sides of the wire use these: the client (``gemini``, ``gemini_request``) and the server
(``gemini_serve``, ``gemini_serve_request``).
"""

from __future__ import annotations

SIGNATURE_SEP = "__thought__"
SKIP_SIGNATURE = "skip_thought_signature_validator"


def join_call_id(call_id: str, signature: str | None) -> str:
    """A canonical tool call id carrying Gemini's thought signature (url-safe, so any client keeps it intact).

    The skip value is not kept: it is no signature, and the request builder adds it again where needed.
    """
    if not signature or signature == SKIP_SIGNATURE:
        return call_id
    return f"{call_id}{SIGNATURE_SEP}{signature.replace('+', '-').replace('/', '_').rstrip('=')}"


def split_call_id(call_id: str) -> tuple[str, str | None]:
    """The inverse of ``join_call_id``: the bare id and the signature in standard, padded base64."""
    bare, sep, signature = call_id.partition(SIGNATURE_SEP)
    if not sep or not signature:
        return call_id, None
    signature = signature.replace("-", "+").replace("_", "/")
    return bare, signature + "=" * (-len(signature) % 4)

"""What a conversion could not carry over, one line per key path of the source file."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True, slots=True)
class Note:
    """One key of the source file that was dropped or only approximated.

    Args:
        path: where it is in the source file (``model_list[2].litellm_params.rpm``).
        kind: ``unmapped`` (dropped: nothing in Breakwater does it, or it needs a hand) or
            ``approximated`` (carried over to something close; the message says how it differs).
        message: what happened and what to do instead.
    """

    path: str
    kind: Literal["unmapped", "approximated"]
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.kind}: {self.message}"

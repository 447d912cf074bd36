"""Which of a conversation's messages a trimmed prompt keeps: pure, no I/O.

A conversation is its system prompt (the ``system`` and ``developer`` messages before the first
other message, kept whatever happens) and then *turns*: a ``user`` message and everything after
it up to the next one (the answers, their tool calls and the tool results). Whole turns go,
oldest first, so a tool call never loses its result and what is kept still starts with a user
message (Anthropic's and Gemini's wires need that). Messages before the first user message are
one turn of their own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from breakwater.core.types import Message

#: the roles of a system prompt
SYSTEM_ROLES = frozenset({"system", "developer"})


@dataclass(frozen=True, slots=True)
class Cut:
    """What trimming removes: the messages ``[start, end)`` of the conversation and their tokens."""

    start: int
    end: int
    tokens: int

    @property
    def messages(self) -> int:
        return self.end - self.start


def turn_starts(messages: Sequence[Message]) -> tuple[int, list[int]]:
    """``(end of the system prompt, the index where each turn starts)``."""
    head = 0
    while head < len(messages) and messages[head].role in SYSTEM_ROLES:
        head += 1
    starts = [i for i in range(head, len(messages)) if messages[i].role == "user"]
    if head < len(messages) and (not starts or starts[0] != head):
        starts.insert(0, head)  # messages before the first user message: a turn of their own
    return head, starts


def plan_cut(
    messages: Sequence[Message], shares: Sequence[int], total: int, budget: int, keep_last_turns: int
) -> Cut | None:
    """The oldest whole turns to remove so ``total`` (the prompt's estimate) fits ``budget``.

    The last ``keep_last_turns`` turns are never removed: when the budget cannot be met without
    them, every earlier turn goes and the prompt stays over. ``None``: nothing to remove.

    Args:
        messages: the conversation.
        shares: each message's share of the estimate (``core/tokens.message_tokens``).
        total: the prompt's estimated tokens: the shares, the reply's priming and any tools.
        budget: the tokens the prompt may take.
        keep_last_turns: turns at the end that are always kept.
    """
    if total <= budget:
        return None
    head, starts = turn_starts(messages)
    removable = len(starts) - keep_last_turns
    if removable <= 0:
        return None
    over, removed, end = total - budget, 0, head
    for turn in range(removable):
        end = starts[turn + 1]
        removed += sum(shares[starts[turn] : end])
        if removed >= over:
            break
    return Cut(head, end, removed)

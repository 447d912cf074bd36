"""Which messages a trimmed prompt keeps (engine/trim/history.py): whole turns, oldest first, the
system prompt and the last turns always kept, a tool call never separated from its result."""

from __future__ import annotations

from breakwater.core.types import Message, TextPart, ToolCall
from breakwater.engine.trim.history import plan_cut, turn_starts


def _m(role: str, text: str = "x", calls: int = 0, call_id: str | None = None) -> Message:
    tool_calls = [ToolCall(f"c{i}", "lookup", "{}") for i in range(calls)]
    return Message(role, [TextPart(text)], tool_calls=tool_calls, tool_call_id=call_id)  # type: ignore[arg-type]


#: system, then three turns; the second is an agent turn with two tool rounds
CONVERSATION = [
    _m("system"),
    _m("user"),  # 1: turn 0
    _m("assistant"),
    _m("user"),  # 3: turn 1
    _m("assistant", calls=2),
    _m("tool", call_id="c0"),
    _m("tool", call_id="c1"),
    _m("assistant", calls=1),
    _m("tool", call_id="c0"),
    _m("assistant"),
    _m("user"),  # 10: turn 2
]
#: every message counts 10 tokens
TENS = [10] * len(CONVERSATION)


def test_turns_start_at_each_user_message_after_the_system_prompt() -> None:
    """The system prompt ends at the first other message; each user message starts a turn."""
    assert turn_starts(CONVERSATION) == (1, [1, 3, 10])


def test_messages_before_the_first_user_message_are_a_turn_of_their_own() -> None:
    """An assistant greeting before any user message is the first turn, not part of the system prompt."""
    messages = [_m("developer"), _m("assistant"), _m("user")]
    assert turn_starts(messages) == (1, [1, 2])


def test_a_prompt_within_budget_is_not_cut() -> None:
    """Under the budget, nothing is planned."""
    assert plan_cut(CONVERSATION, TENS, 110, 110, 1) is None


def test_the_oldest_turn_goes_first_and_only_as_much_as_needed() -> None:
    """10 tokens over: the first turn (2 messages, 20 tokens) goes, nothing else."""
    cut = plan_cut(CONVERSATION, TENS, 120, 110, 1)
    assert cut is not None and (cut.start, cut.end, cut.tokens, cut.messages) == (1, 3, 20, 2)


def test_a_tool_call_is_never_separated_from_its_results() -> None:
    """Needing 30 tokens more than the first turn gives, the whole agent turn goes (its calls and
    results together): no kept tool result lacks its call, no kept call lacks its result."""
    cut = plan_cut(CONVERSATION, TENS, 140, 90, 1)
    assert cut is not None and (cut.start, cut.end) == (1, 10)
    kept = CONVERSATION[: cut.start] + CONVERSATION[cut.end :]
    assert [m.role for m in kept] == ["system", "user"]
    for budget in range(0, 140, 5):
        cut = plan_cut(CONVERSATION, TENS, 140, budget, 1)
        if cut is None:
            continue
        kept = CONVERSATION[: cut.start] + CONVERSATION[cut.end :]
        calls = {c.id for m in kept for c in m.tool_calls}
        results = [m.tool_call_id for m in kept if m.role == "tool"]
        assert set(results) <= calls and (not calls or results)
        assert kept[cut.start].role == "user", "what is kept starts with a user message"


def test_the_last_turns_are_kept_even_over_budget() -> None:
    """keep_last_turns=2 protects the agent turn: only the first turn can go, the prompt stays over."""
    cut = plan_cut(CONVERSATION, TENS, 110, 10, 2)
    assert cut is not None and (cut.start, cut.end) == (1, 3)


def test_a_conversation_with_no_turn_to_spare_is_left_alone() -> None:
    """One turn (the question), however long: nothing to remove."""
    assert plan_cut([_m("system"), _m("user")], [10, 10], 10_000, 100, 1) is None

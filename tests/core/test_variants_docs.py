"""Every config example in docs/variants.md validates, with the figures the page says."""

from __future__ import annotations

import re
from pathlib import Path

from breakwater.core.config import parse_config
from breakwater.runtime.variants import build_refusal_detector

DOC = (Path(__file__).resolve().parents[2] / "docs" / "variants.md").read_text()
BLOCKS = re.findall(r"```yaml\n(.*?)```", DOC, flags=re.DOTALL)


def test_every_example_validates() -> None:
    assert len(BLOCKS) == 4
    for block in BLOCKS:
        parse_config(block, "docs/variants.md")


def test_the_examples_say_what_the_page_says() -> None:
    """The canary takes 1%, the branching example marks its control, the refusal example adds
    Italian and replaces the shipped English."""
    canary, branching, prompted, refusals = (parse_config(b, "docs/variants.md") for b in BLOCKS)
    support = prompted.routes["support"].variants
    assert support is not None and support.arms["canary"].prompt == "triage@4"
    chat = canary.routes["chat"].variants
    assert chat is not None and chat.sticky == "user" and chat.arms["canary"].weight == 1 and chat.control == "control"
    assistant = branching.routes["assistant"].variants
    assert assistant is not None and assistant.control == "today" and assistant.arms["router"].route == "routed"
    detector = build_refusal_detector(refusals)
    assert detector is not None
    assert detector.text("Mi dispiace, ma non posso farlo.") and detector.text("I'm not allowed to help with that.")
    assert not detector.text("I can't help with that.") and detector.text("Ich kann dabei nicht helfen.")

"""docs/guardrails.md's configuration examples are valid ``dlp`` settings and mean what the page says."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from breakwater.core.config.dlp import ProviderDlp, RouteDlp
from breakwater.core.types import ChatRequest, Message, TextPart
from breakwater.engine.guardrails.dlp import DlpPlan, find

DOC = Path(__file__).resolve().parents[2] / "docs" / "guardrails.md"


def _snippets() -> list[dict[str, Any]]:
    return [yaml.safe_load(block) for block in re.findall(r"```yaml\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)]


def test_the_route_example_masks_blocks_cards_and_allows_ips() -> None:
    """The first example: a mask default, cards blocked, secrets redacted, IPs allowed."""
    route = RouteDlp.model_validate(_snippets()[0]["routes"]["support"]["dlp"])
    plan = DlpPlan(route, {}, [])
    assert [plan.action(k, None) for k in ("email", "card", "secret", "ip")] == ["mask", "block", "redact", "allow"]


def test_the_provider_example_sends_raw_data_to_the_local_provider_only() -> None:
    """The per-provider example: the local provider gets the request as sent, OpenAI's is redacted."""
    config = _snippets()[1]
    providers = {name: ProviderDlp.model_validate(p["dlp"]) for name, p in config["providers"].items() if "dlp" in p}
    route = RouteDlp.model_validate(config["routes"]["notes"]["dlp"])
    request = ChatRequest("notes", [Message("user", [TextPart("mail jane@example.com")])])
    plan = DlpPlan(route, providers, find(request))
    assert plan.outbound(request, "local-vllm") is request
    sent = plan.outbound(request, "openai").messages[0].content[0]
    assert isinstance(sent, TextPart) and sent.text == "mail [EMAIL]"

"""``breakwater tokens``: a chat body, a Messages body or plain text counted offline."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from breakwater.cli.main import main

BODY = {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello there"}]}


def test_a_chat_body_from_a_file_is_counted_exactly_for_an_openai_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A chat body for gpt-4o: its prompt tokens with OpenAI's framing, o200k_base, exact."""
    path = tmp_path / "body.json"
    path.write_text(json.dumps(BODY))
    assert main(["tokens", str(path), "--model", "gpt-4o", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out == {"input_tokens": 16, "tokenizer": "o200k_base", "exact": True, "family": "openai", "counted": "chat"}


def test_plain_text_from_stdin_and_text_option(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Input that is not a JSON object, or --text, is counted as text without chat framing."""
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"hello world")))
    assert main(["tokens", "--model", "gpt-4o"]) == 0
    assert capsys.readouterr().out.strip() == "2 tokens (o200k_base, exact)"
    assert main(["tokens", "--model", "claude-sonnet-4", "--text", "hello world"]) == 0
    assert capsys.readouterr().out.strip() == "3 tokens (cl100k_base x1.1, an estimate for anthropic)"


def test_a_messages_body_and_a_bad_body(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--wire anthropic reads a Messages body (no max_tokens needed); a bad body exits 1 naming the field."""
    path = tmp_path / "messages.json"
    path.write_text(json.dumps({"system": "Be brief.", "messages": [{"role": "user", "content": "Hello there"}]}))
    assert main(["tokens", str(path), "--model", "claude-3-5-haiku", "--wire", "anthropic"]) == 0
    assert "an estimate for anthropic" in capsys.readouterr().out
    path.write_text(json.dumps({"messages": "hi"}))
    assert main(["tokens", str(path), "--model", "gpt-4o"]) == 1
    assert "'messages'" in capsys.readouterr().err
    assert main(["tokens", str(tmp_path / "missing.json"), "--model", "gpt-4o"]) == 1

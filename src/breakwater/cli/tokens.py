"""``breakwater tokens``: a prompt's token count, offline, as the gateway's token-count endpoints answer it.

The input is a chat completions body (``--wire anthropic``: a Messages body), from a file or
standard input, or plain text (``--text``, or input that is not a JSON object), counted without
any chat framing. ``--model`` picks the tokenizer (``infra/tokenizers``: exact for OpenAI models,
an estimate for Claude and Gemini); ``--provider`` names the upstream family when the model's
name does not say it.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import orjson

from breakwater.core.errors import InvalidRequest, RequestError


def register(sub: Any) -> None:
    tokens = sub.add_parser("tokens", help="count a prompt's tokens offline (a chat body or plain text)")
    tokens.add_argument("file", nargs="?", default="-", help="a JSON chat body or text (default: standard input)")
    tokens.add_argument("--model", required=True, help="the model whose tokenizer counts (gpt-4o, claude-…)")
    tokens.add_argument(
        "--provider",
        choices=["openai", "azure", "anthropic", "gemini"],
        default=None,
        help="the upstream family, when the model's name does not say it",
    )
    tokens.add_argument("--text", default=None, help="count this text instead of reading input")
    tokens.add_argument(
        "--wire", choices=["openai", "anthropic"], default="openai", help="the body's format (default: openai)"
    )
    tokens.add_argument("--json", action="store_true", help="print the count as JSON")
    tokens.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from breakwater.infra.tokenizers import Tokenizers
    from breakwater.infra.tokenizers.estimate import estimate_chat, estimate_text

    tokenizers = Tokenizers()
    try:
        if args.text is not None:
            estimate, kind = estimate_text(tokenizers, args.provider, args.model, args.text), "text"
        else:
            raw = _read(args.file)
            body = _json_object(raw)
            if body is None:
                text = raw.decode("utf-8", "replace")
                estimate, kind = estimate_text(tokenizers, args.provider, args.model, text), "text"
            else:
                request = _decode(body, args.wire)
                estimate, kind = estimate_chat(tokenizers, args.provider, args.model, request), "chat"
    except OSError as exc:
        print(f"breakwater tokens: cannot read {args.file}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    except RequestError as exc:
        print(f"breakwater tokens: {exc.message}", file=sys.stderr)
        return 1
    if args.json:
        out = {
            "input_tokens": estimate.tokens,
            "tokenizer": estimate.tokenizer,
            "exact": estimate.exact,
            "family": estimate.family,
            "counted": kind,
        }
        print(orjson.dumps(out).decode())
    else:
        how = "exact" if estimate.exact else f"an estimate for {estimate.family}"
        print(f"{estimate.tokens} tokens ({estimate.tokenizer}, {how})")
    return 0


def _read(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    with open(path, "rb") as file:
        return file.read()


def _json_object(raw: bytes) -> dict[str, Any] | None:
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def _decode(body: dict[str, Any], wire: str) -> Any:
    from breakwater.providers import openai_serve
    from breakwater.server.token_count import decode_count_tokens

    body = {"model": "tokens", **body}  # the model is --model's; a body without one is still a body
    request = decode_count_tokens(body) if wire == "anthropic" else openai_serve.decode_chat_request(body)
    if request.prompt is not None:
        raise InvalidRequest("'prompt': prompts of the registry are not rendered here; send the messages")
    return request

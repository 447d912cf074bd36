"""How close the offline prompt-token estimate is to each model family's reference count, offline.

    python bench/token_estimate_accuracy.py [--claude-tokenizer tokenizer.json] [--json]

The corpus is what the repository holds (no network, no data set): English prose (the
paragraphs of docs/*.md), Python code (functions of src/), JSON (the request schemas of
tests/data/) and a few sentences in other scripts written here (German, French, Russian,
Japanese, Chinese). Each text is counted by the estimate (``infra/tokenizers/estimate.py``)
and by the family's reference:

- OpenAI (gpt-4o: o200k_base, gpt-4: cl100k_base): chat requests of three messages made from
  the corpus; the reference is OpenAI's published way of counting a chat prompt (each message's
  text encoded on its own, 3 tokens priming the reply and 4 a message: the OpenAI cookbook's
  "How to count tokens with tiktoken"), against which the estimate (all texts encoded at once,
  joined by newlines) is compared;
- Claude: Claude's current tokenizer is not public. The one Anthropic published is Claude 2's
  (``tokenizer.json`` in the ``anthropic`` Python package up to 0.38:
  ``pip download anthropic==0.38.0 --no-deps`` and unzip it), read with Hugging Face's
  ``tokenizers``; pass its path with ``--claude-tokenizer``. Without it the Claude row says so.
  Claude 3 and later split text somewhat differently, so this bounds the estimate's error
  against *a* Claude tokenizer, not the one billed today;
- Gemini: no Gemini tokenizer ships in a package (Google's local tokenizer downloads its
  vocabulary at run time), so the Gemini estimate is not measured here.

Each row: texts counted, the mean signed error (+: the estimate counts more), the mean absolute
error and the 95th percentile of the absolute error, in percent of the reference.
"""

from __future__ import annotations

import argparse
import ast
import json
import statistics
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from breakwater.core.tokens import byte_estimate  # noqa: E402
from breakwater.core.types import ChatRequest, Message, TextPart  # noqa: E402
from breakwater.infra.tokenizers import Tokenizers  # noqa: E402
from breakwater.infra.tokenizers.estimate import estimate_chat, estimate_text  # noqa: E402

#: a few sentences in other scripts, written for this benchmark
OTHER_SCRIPTS = [
    "Die Anfrage wurde an den nächsten verfügbaren Dienst weitergeleitet, nachdem der erste nicht antwortete.",
    "Le budget mensuel de l'équipe est presque épuisé ; les requêtes suivantes seront refusées.",
    "Запрос был перенаправлен на резервный сервер, потому что основной не ответил вовремя.",
    "最初のサーバーが応答しなかったため、リクエストは次のサーバーに転送されました。",
    "由于第一个服务器没有响应，请求被转发到了下一个可用的服务器。",
    "チームの月間予算はほぼ使い切られています。以降のリクエストは拒否されます。",
]


def corpus() -> dict[str, list[str]]:
    """The texts, by kind."""
    prose = [
        p.strip()
        for path in sorted((ROOT / "docs").glob("*.md"))
        for p in path.read_text(encoding="utf-8").split("\n\n")
        if len(p.strip()) > 200 and not p.lstrip().startswith(("|", "```", "#"))
    ]
    code: list[str] = []
    for path in sorted((ROOT / "src" / "breakwater").rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.FunctionDef) and node.end_lineno and node.end_lineno - node.lineno >= 8:
                code.append(ast.get_source_segment(source, node) or "")
    schemas = [
        json.dumps(json.loads(p.read_text()), indent=1) for p in sorted((ROOT / "tests" / "data").glob("*.json"))
    ]
    json_texts = [s[i : i + 3000] for s in schemas for i in range(0, len(s), 3000)]
    return {"prose": prose[:300], "code": code[:300], "json": json_texts, "other scripts": OTHER_SCRIPTS}


def chats(texts: list[str]) -> Iterator[ChatRequest]:
    """Chat requests of three messages (system, user, assistant) from consecutive texts."""
    roles = ("system", "user", "assistant")
    for i in range(0, len(texts) - 2, 3):
        yield ChatRequest("m", [Message(role, [TextPart(t)]) for role, t in zip(roles, texts[i : i + 3], strict=True)])


def errors(pairs: list[tuple[int, int]]) -> dict[str, float]:
    """Signed and absolute errors, in percent of the reference."""
    signed = [100 * (est - ref) / ref for est, ref in pairs if ref]
    absolute = sorted(abs(e) for e in signed)
    p95 = absolute[min(len(absolute) - 1, int(0.95 * len(absolute)))] if absolute else 0.0
    return {
        "n": len(signed),
        "mean_signed_pct": round(statistics.fmean(signed), 2) if signed else 0.0,
        "mean_abs_pct": round(statistics.fmean(absolute), 2) if absolute else 0.0,
        "p95_abs_pct": round(p95, 2),
    }


def openai_rows(tokenizers: Tokenizers, texts: dict[str, list[str]]) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for model, encoding in (("gpt-4o", "o200k_base"), ("gpt-4", "cl100k_base")):
        encode = tokenizers.encoding(encoding).encode_ordinary
        for kind, items in texts.items():
            pairs, bytes_pairs = [], []
            for request in chats(items):
                reference = 3 + sum(4 + len(encode(m.text())) for m in request.messages)
                pairs.append((estimate_chat(tokenizers, "openai", model, request).tokens, reference))
                bytes_pairs.append((3 + sum(4 + byte_estimate(m.text()) for m in request.messages), reference))
            rows.append({"family": f"OpenAI {model} ({encoding}, exact tokenizer)", "kind": kind, **errors(pairs)})
            rows.append({"family": f"  byte estimate, for comparison ({model})", "kind": kind, **errors(bytes_pairs)})
    return rows


def claude_rows(tokenizers: Tokenizers, texts: dict[str, list[str]], path: str | None) -> list[dict[str, object]]:
    if path is None:
        return [{"family": "Claude (cl100k_base x1.1)", "kind": "-", "note": "no reference: pass --claude-tokenizer"}]
    from tokenizers import Tokenizer  # Hugging Face's; only for this row

    claude = Tokenizer.from_file(path)

    def reference(text: str) -> int:
        return len(claude.encode(text).ids)

    rows: list[dict[str, object]] = []
    for kind, items in texts.items():
        pairs = [(estimate_text(tokenizers, "anthropic", "claude", t).tokens, reference(t)) for t in items]
        bytes_pairs = [(byte_estimate(t), reference(t)) for t in items]
        rows.append({"family": "Claude (cl100k_base x1.1) vs Claude 2's tokenizer", "kind": kind, **errors(pairs)})
        rows.append({"family": "  byte estimate, for comparison", "kind": kind, **errors(bytes_pairs)})
    return rows


def markdown(rows: list[dict[str, object]]) -> str:
    lines = [
        "| family | text | n | mean error | mean abs error | p95 abs error |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        if "note" in r:
            lines.append(f"| {r['family']} | {r['kind']} | - | {r['note']} | | |")
        else:
            lines.append(
                f"| {r['family']} | {r['kind']} | {r['n']} | {r['mean_signed_pct']:+.1f}% | "
                f"{r['mean_abs_pct']:.1f}% | {r['p95_abs_pct']:.1f}% |"
            )
    lines.append("| Gemini (o200k_base) | - | - | no reference: no Gemini tokenizer ships in a package | | |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--claude-tokenizer", metavar="FILE", help="Claude 2's tokenizer.json (see the docstring)")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = parser.parse_args(argv)
    tokenizers = Tokenizers()
    texts = corpus()
    rows = openai_rows(tokenizers, texts) + claude_rows(tokenizers, texts, args.claude_tokenizer)
    print(json.dumps(rows, indent=1) if args.json else markdown(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

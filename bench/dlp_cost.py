"""Data-loss prevention's cost, in process: the detectors on a 4k-token prompt, and the dlp stage.

    python bench/dlp_cost.py [--repeats R]

- ``scan``: ``core/detectors.scan`` over every kind on a ~16,000-character prompt (about 4k
  tokens at 4 characters a token), p50 of single calls: plain prose; prose with a number every
  ~30 words (dates, amounts, versions, ids) and no personal data; the same with a few findings;
  and that text with fullwidth characters in it (not ASCII: folded first). The issue's target is 0.2 ms p50 for input *and* output checks of the regex class.
- ``stage``: the dlp stage around a stub call that answers at once, per request: absent; present
  but the request on a route without ``dlp`` (configured, not acting); acting with ``log`` on
  the 4k-token prompt; masking a short prompt (placeholders numbered, the answer restored).

Timings are wall-clock on a shared machine: repeat and take the median before comparing.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time

from breakwater.core.config.dlp import ProviderDlp, RouteDlp
from breakwater.core.detectors import scan
from breakwater.core.types import ChatRequest, ChatResponse, Choice, Message, TextPart
from breakwater.engine.context import RequestContext
from breakwater.engine.guardrails.dlp_stage import DlpStage
from breakwater.engine.pipeline import ChatAnswer, ChatCall

WORDS = [
    "the",
    "of",
    "and",
    "to",
    "in",
    "is",
    "you",
    "that",
    "it",
    "he",
    "was",
    "for",
    "on",
    "are",
    "as",
    "with",
    "his",
    "they",
    "at",
    "be",
    "this",
    "have",
    "from",
    "or",
    "one",
    "had",
    "by",
    "word",
    "but",
    "not",
    "what",
    "all",
    "were",
    "we",
    "when",
    "your",
    "can",
    "said",
    "there",
    "use",
    "an",
    "each",
    "which",
    "she",
    "do",
    "how",
    "their",
    "if",
    "will",
    "up",
    "other",
    "about",
    "out",
    "many",
    "then",
    "them",
    "these",
    "so",
    "some",
    "her",
    "would",
    "make",
    "like",
    "him",
    "into",
    "time",
    "has",
    "look",
    "two",
    "more",
    "write",
    "go",
    "see",
    "number",
    "no",
    "way",
    "could",
    "people",
    "my",
    "than",
    "first",
    "water",
    "been",
    "call",
    "who",
    "oil",
    "its",
    "now",
    "find",
    "long",
    "down",
    "day",
    "did",
    "get",
    "come",
    "made",
    "may",
    "part",
    "customer",
    "account",
    "invoice",
    "payment",
    "delivery",
    "schedule",
    "summary",
    "report",
]
PII = ["jane.doe@example.com", "4111 1111 1111 1111", "+44 20 7946 0958", "DE89 3704 0044 0532 0130 00"]
CHARS = 16_000


def prompt(numbers: bool, seed: int = 7, findings: bool = True) -> str:
    """About 4k tokens of prose; with ``numbers``, a number every ~30 words and (``findings``) a
    few findings."""
    rng = random.Random(seed)
    words: list[str] = []
    size = 0
    while size < CHARS:
        word = rng.choice(WORDS)
        if numbers and rng.random() < 0.033:
            word = rng.choice([str(rng.randint(1, 999)), "2026-11-23", "v2.3.1", f"#{rng.randint(10000, 99999)}"])
        if numbers and rng.random() < 0.001:
            word = rng.choice(PII) if findings else word
        words.append(word)
        size += len(word) + 1
    return " ".join(words)[:CHARS]


def p50_us(fn: object, repeats: int) -> float:
    call = fn  # a zero-argument callable
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()  # type: ignore[operator]
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1e6


async def _answer(request: ChatRequest, ctx: RequestContext) -> ChatAnswer:
    return ChatResponse("id", request.model, 0, [Choice(0, Message("assistant", [TextPart("ok [EMAIL_1]")]), "stop")])


def stage_us(call: ChatCall, request: ChatRequest, repeats: int) -> float:
    async def run() -> float:
        samples = []
        for _ in range(repeats):
            ctx = RequestContext("r")
            start = time.perf_counter()
            await call(request, ctx)
            samples.append(time.perf_counter() - start)
        return statistics.median(samples) * 1e6

    return asyncio.run(run())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=500)
    args = parser.parse_args()
    plain, numbered = prompt(False), prompt(True)
    unicode_ = numbered.replace(" the ", " ｔｈｅ ")
    print(f"scan, {CHARS} characters (~4k tokens), p50 of {args.repeats} calls:")
    clean = prompt(True, findings=False)
    cases = (
        ("plain prose", plain),
        ("prose with numbers", clean),
        ("numbers and findings", numbered),
        ("not ASCII", unicode_),
    )
    for name, text in cases:
        found = ",".join(sorted({f.kind for f in scan(text)})) or "-"
        print(f"  {name:<20} {p50_us(lambda t=text: scan(t), args.repeats):8.1f} us   found: {found}")

    stage = DlpStage({"guarded": RouteDlp(action="log"), "masked": RouteDlp(action="mask")}, {})
    masking = DlpStage({"masked": RouteDlp(action="mask")}, {"p": ProviderDlp()})
    long_ = ChatRequest("guarded", [Message("user", [TextPart(numbered)])])
    short = ChatRequest("other", [Message("user", [TextPart("What is the capital of France?")])])
    masked = ChatRequest("masked", [Message("user", [TextPart("Write to jane.doe@example.com today.")])])
    print(f"stage, per request, p50 of {args.repeats}:")
    print(f"  {'no stage':<34} {stage_us(_answer, short, args.repeats):8.1f} us")
    print(f"  {'configured, not acting':<34} {stage_us(stage.chat(_answer), short, args.repeats):8.1f} us")
    print(f"  {'log, 4k-token prompt':<34} {stage_us(stage.chat(_answer), long_, args.repeats):8.1f} us")
    print(f"  {'mask + restore, short prompt':<34} {stage_us(masking.chat(_answer), masked, args.repeats):8.1f} us")


if __name__ == "__main__":
    main()

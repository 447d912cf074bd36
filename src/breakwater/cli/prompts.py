"""``breakwater prompts list | show | diff``: the prompt registry of a config file, offline.

``diff NAME@A NAME@B`` prints a unified diff of the two versions (messages and variables) and
whether B keeps A's cacheable prefix (``engine/prompts/prefix.py``); it exits 1 when the prefix
is broken (``--strict``: shortened too), so a CI step can flag a change that empties the
provider's prompt cache. Nothing here needs credentials or a network.
"""

from __future__ import annotations

import argparse
import difflib
import os
import sys
from typing import Any

from breakwater.core.config import Config, ConfigError
from breakwater.core.config.prompts import PromptVersion, parse_ref
from breakwater.engine.prompts.prefix import MIN_CACHEABLE_TOKENS, compare_prefix
from breakwater.engine.prompts.render import CompiledVersion

__all__ = ["register"]


def register(sub: Any) -> None:
    """Add the ``prompts`` subcommand (``list``, ``show``, ``diff``) to the ``breakwater`` parser."""
    prompts = sub.add_parser("prompts", help="the prompt registry of a config: list, show, diff versions")
    actions = prompts.add_subparsers(dest="prompts_command", required=True)

    listing = actions.add_parser("list", help="every prompt, its versions and the current one")
    _config_option(listing)
    listing.set_defaults(run=_list)

    show = actions.add_parser("show", help="one version's messages and variables (NAME: the current one)")
    show.add_argument("ref", metavar="NAME[@VERSION]")
    _config_option(show)
    show.set_defaults(run=_show)

    diff = actions.add_parser("diff", help="two versions compared, and whether the cacheable prefix is kept")
    diff.add_argument("a", metavar="NAME@A")
    diff.add_argument("b", metavar="NAME@B")
    _config_option(diff)
    diff.add_argument("--base-config", metavar="FILE", help="read A from this config instead (e.g. main's)")
    diff.add_argument(
        "--min-tokens",
        type=int,
        default=MIN_CACHEABLE_TOKENS,
        help=f"the provider's minimum cacheable prompt (default {MIN_CACHEABLE_TOKENS}: OpenAI, most Claude models)",
    )
    diff.add_argument(
        "--tokenizer", default="o200k_base", choices=["o200k_base", "cl100k_base"], help="the shipped tokenizer"
    )
    diff.add_argument("--strict", action="store_true", help="exit 1 on a shortened prefix too")
    diff.set_defaults(run=_diff)


def _config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE", help="YAML config (default: the embedded default)")


class _Usage(Exception):
    """A reference that does not resolve: the message is for the person at the terminal."""


def _load(path: str | None) -> Config:
    from breakwater.runtime.loading import load_config

    return load_config(path, os.environ)


def _version(config: Config, text: str, *, need_version: bool = False) -> tuple[str, int, PromptVersion]:
    ref = parse_ref(text)
    if ref is None:
        raise _Usage(f"{text!r}: expected NAME or NAME@VERSION")
    name, number = ref
    if need_version and number is None:
        raise _Usage(f"{text!r}: expected NAME@VERSION")
    prompt = config.prompts.get(name)
    if prompt is None:
        raise _Usage(f"no prompt {name!r} (prompts: {', '.join(sorted(config.prompts)) or 'none'})")
    number = prompt.default_version if number is None else number
    version = prompt.versions.get(number)
    if version is None:
        raise _Usage(f"prompt {name!r} has no version {number} (versions: {', '.join(map(str, prompt.versions))})")
    return name, number, version


def _describe(version: PromptVersion) -> list[str]:
    """A version as lines of text: its messages, then its variables (what ``show`` prints, ``diff`` compares)."""
    lines: list[str] = []
    for message in version.messages:
        lines.append(f"[{message.role}]")
        lines.extend(message.content.splitlines() or [""])
    if version.variables:
        lines.append("[variables]")
    for name, var in version.variables.items():
        facts: list[str] = [var.type]
        if var.values:
            facts.append("values " + "|".join(var.values))
        if var.max_length is not None:
            facts.append(f"max_length {var.max_length}")
        facts.append("required" if var.default is None else f"default {var.default!r}")
        lines.append(f"{name}: {', '.join(facts)}")
    return lines


def _guarded(run: Any) -> Any:
    def guarded(args: argparse.Namespace) -> int:
        try:
            code: int = run(args)
        except ConfigError as exc:
            print(exc, file=sys.stderr)
            return 2
        except _Usage as exc:
            print(f"breakwater prompts: {exc}", file=sys.stderr)
            return 2
        return code

    return guarded


@_guarded
def _list(args: argparse.Namespace) -> int:
    config = _load(args.config)
    if not config.prompts:
        print("no prompts")
    for name, prompt in sorted(config.prompts.items()):
        versions = ", ".join(map(str, sorted(prompt.versions)))
        print(f"{name}  versions {versions}  current {prompt.default_version}")
    return 0


@_guarded
def _show(args: argparse.Namespace) -> int:
    name, number, version = _version(_load(args.config), args.ref)
    print(f"{name}@{number}")
    print("\n".join(_describe(version)))
    return 0


@_guarded
def _diff(args: argparse.Namespace) -> int:
    from breakwater.infra.tokenizers import load_encoding

    config = _load(args.config)
    base = config if args.base_config is None else _load(args.base_config)
    name_a, number_a, a = _version(base, args.a, need_version=True)
    name_b, number_b, b = _version(config, args.b, need_version=True)
    label_a, label_b = f"{name_a}@{number_a}", f"{name_b}@{number_b}"
    diff = list(difflib.unified_diff(_describe(a), _describe(b), label_a, label_b, lineterm=""))
    print("\n".join(diff) if diff else f"{label_a} and {label_b} are the same")
    encoding = load_encoding(args.tokenizer)
    report = compare_prefix(
        CompiledVersion.of(name_a, number_a, a),
        CompiledVersion.of(name_b, number_b, b),
        encoding.encode_ordinary,
        args.min_tokens,
    )
    print(report.summary())
    return 1 if report.status == "broken" or (args.strict and report.status == "shortened") else 0

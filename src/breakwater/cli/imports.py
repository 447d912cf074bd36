"""``breakwater import litellm FILE [-o OUT]``: another gateway's config as a Breakwater config.

The conversion is ``core/migration``'s; this module reads the file, checks the result with the
same validation ``check-config`` runs on its text (credentials are not resolved: the variables may
only exist where the gateway runs), writes the YAML and lists, one line each with its key path,
what could not be carried over or was only approximated.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

_HEADER = """\
# Converted from the LiteLLM proxy config {source} by `breakwater import litellm`.
# Check it with `breakwater check-config`; what did not carry over is listed below the command
# and in docs/migration.md. Keys are references (env:NAME), never values.
"""


def register(sub: Any) -> None:
    command = sub.add_parser("import", help="convert another gateway's config (LiteLLM) to a Breakwater config")
    kinds = command.add_subparsers(dest="kind", required=True)
    litellm = kinds.add_parser("litellm", help="a LiteLLM proxy config.yaml")
    litellm.add_argument("file", help="the LiteLLM proxy config (YAML)")
    litellm.add_argument("-o", "--output", metavar="FILE", help="write the Breakwater config here (default: stdout)")
    litellm.set_defaults(run=_litellm)


def _litellm(args: argparse.Namespace) -> int:
    import yaml

    from breakwater.core.config import ConfigError, build_config
    from breakwater.core.migration.litellm import convert

    try:
        data = yaml.safe_load(Path(args.file).read_text(encoding="utf-8"))
    except OSError as exc:
        print(f"breakwater import: cannot read {args.file}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    except yaml.YAMLError:
        print(f"breakwater import: {args.file} is not valid YAML", file=sys.stderr)
        return 1
    conversion = convert(data, os.environ)
    text = _HEADER.format(source=Path(args.file).name) + yaml.safe_dump(
        conversion.config, sort_keys=False, default_flow_style=False, allow_unicode=True
    )
    status = 0
    try:
        config = build_config(conversion.config, "converted config")
        summary = (
            f"{len(config.providers)} providers, {len(config.deployments)} deployments, {len(config.routes)} routes"
        )
    except ConfigError as exc:
        summary, status = f"the result does not validate yet:\n{exc}", 1
    if not conversion.config.get("routes"):
        summary, status = "no model could be converted", 1
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"wrote {args.output}: {summary}", file=sys.stderr)
    else:
        sys.stdout.write(text)
        print(summary, file=sys.stderr)
    if conversion.notes:
        print(f"{len(conversion.notes)} key(s) not carried over as they were:", file=sys.stderr)
        for note in conversion.notes:
            print(f"  {note}", file=sys.stderr)
    return status

"""``breakwater config apply | history | show | diff | rollback``: stored configuration versions.

The commands work on the store named by ``--store`` or ``BREAKWATER_CONFIG_STORE`` (the one the
gateways run from with ``breakwater serve --config-store``): a SQLite file or a PostgreSQL
database, usually the key store. An apply is checked like ``check-config`` (add
``--no-env-check`` where the gateways' secrets are not in this shell's environment); once stored,
gateways following the store load it (at once with Redis pub/sub, else by polling). Exit codes:
0 done, 1 refused or not found, 2 a bad argument.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import os
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from breakwater.cli.access import login_actor
from breakwater.core.config import ConfigError
from breakwater.core.config.versions import ConfigVersion, ConfigVersions, VersionConflict


def register(sub: Any) -> None:
    """Add ``config`` and its commands to the ``breakwater`` parser's subparsers."""
    config = sub.add_parser("config", help="stored configuration versions: apply, history, show, diff, rollback")
    actions = config.add_subparsers(dest="action", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--store", metavar="URL", help="sqlite:///path or postgresql://... (default: $BREAKWATER_CONFIG_STORE)"
    )
    common.add_argument("--json", action="store_true", help="print JSON")

    apply = actions.add_parser("apply", parents=[common], help="check a config file and store it as the newest version")
    apply.add_argument("file")
    apply.add_argument("-m", "--message", required=True, help="why (kept in the history)")
    apply.add_argument("--author", help="who (default: cli:<login name>)")
    apply.add_argument("--expect", type=int, metavar="N", help="refuse if the newest version is not N")
    apply.add_argument("--no-env-check", action="store_true", help="skip the environment checks (references, hosts)")
    apply.set_defaults(run=_run, op=_apply)

    history = actions.add_parser("history", parents=[common], help="the versions, newest first")
    history.add_argument("--limit", type=int, default=20)
    history.set_defaults(run=_run, op=_history)

    show = actions.add_parser("show", parents=[common], help="one version's text (default: the newest)")
    show.add_argument("number", nargs="?", type=int)
    show.set_defaults(run=_run, op=_show)

    diff = actions.add_parser("diff", parents=[common], help="what changed from version N to M (default: the newest)")
    diff.add_argument("first", type=int, metavar="N")
    diff.add_argument("second", nargs="?", type=int, metavar="M")
    diff.set_defaults(run=_run, op=_diff)

    rollback = actions.add_parser(
        "rollback", parents=[common], help="apply an earlier version again (default: the one before the newest)"
    )
    rollback.add_argument("number", nargs="?", type=int)
    rollback.add_argument("-m", "--message", default="", help="why (default: 'rollback to version N')")
    rollback.add_argument("--author", help="who (default: cli:<login name>)")
    rollback.add_argument("--no-env-check", action="store_true", help="skip the environment checks (references, hosts)")
    rollback.set_defaults(run=_run, op=_rollback)


Op = Callable[[argparse.Namespace, ConfigVersions], Awaitable[int]]


class _Refused(Exception):
    """Exit 1 with this message."""


def _run(args: argparse.Namespace) -> int:
    from breakwater.runtime.stored_config import STORE_ENV, versions_store

    url = args.store or os.environ.get(STORE_ENV)
    if not url:
        print(f"breakwater config: name the store with --store URL or {STORE_ENV}", file=sys.stderr)
        return 2
    try:
        store = versions_store(url, os.environ)
        result: int = asyncio.run(_with(store, args))
    except (ConfigError, _Refused) as exc:
        print(f"breakwater config {args.action}: {exc}", file=sys.stderr)
        return 1
    return result


async def _with(store: ConfigVersions, args: argparse.Namespace) -> int:
    try:
        await store.open()
    except Exception as exc:  # noqa: BLE001 - any driver's failure: say which, exit 1
        raise _Refused(f"cannot use the store: {type(exc).__name__}: {exc}") from None
    try:
        op: Op = args.op
        return await op(args, store)
    finally:
        await store.close()


async def _apply(args: argparse.Namespace, store: ConfigVersions) -> int:
    from breakwater.runtime.loading import read_config_text
    from breakwater.runtime.stored_config import apply

    try:
        text = read_config_text(args.file)  # a file that extends another is stored merged
    except ConfigError as exc:
        raise _Refused(str(exc)) from None
    try:
        applied = await apply(
            store,
            text,
            author=args.author or login_actor(),
            message=args.message,
            now=time.time(),
            environ=os.environ,
            environment=not args.no_env_check,
            expect=args.expect,
        )
    except VersionConflict as exc:
        raise _Refused(str(exc)) from None
    version = applied.version
    if applied.created:
        await _announce(version)
    if args.json:
        print(orjson.dumps({**version.public(), "created": applied.created}).decode())
    elif applied.created:
        print(f"applied version {version.number} ({version.hash}): {version.message}")
        print(_reach(version))
    else:
        print(f"unchanged: version {version.number} holds this text already")
    return 0


async def _history(args: argparse.Namespace, store: ConfigVersions) -> int:
    versions = await store.config_history(max(1, args.limit))
    if args.json:
        print(orjson.dumps([v.public() for v in versions]).decode())
        return 0
    if not versions:
        print("no configuration stored yet")
        return 0
    print(f"{'version':>7}  {'when (UTC)':<19}  {'action':<13}  {'author':<20}  {'hash':<16}  message")
    for v in versions:
        when = datetime.datetime.fromtimestamp(v.ts, datetime.UTC).strftime("%Y-%m-%d %H:%M:%S")
        print(f"{v.number:>7}  {when:<19}  {v.action:<13}  {v.author[:20]:<20}  {v.hash:<16}  {v.message}")
    return 0


async def _show(args: argparse.Namespace, store: ConfigVersions) -> int:
    version = await _get(store, args.number)
    if args.json:
        print(orjson.dumps(version.public(text=True)).decode())
    else:
        sys.stdout.write(version.text if version.text.endswith("\n") else version.text + "\n")
    return 0


async def _diff(args: argparse.Namespace, store: ConfigVersions) -> int:
    from breakwater.runtime.stored_config import diff

    first, second = await _get(store, args.first), await _get(store, args.second)
    text = diff(first, second)
    if args.json:
        print(orjson.dumps({"from": first.number, "to": second.number, "diff": text}).decode())
    else:
        sys.stdout.write(text or f"versions {first.number} and {second.number} hold the same text\n")
    return 0


async def _rollback(args: argparse.Namespace, store: ConfigVersions) -> int:
    from breakwater.runtime.stored_config import rollback

    try:
        version = await rollback(
            store,
            args.number,
            author=args.author or login_actor(),
            message=args.message,
            now=time.time(),
            environ=os.environ,
            environment=not args.no_env_check,
        )
    except (LookupError, VersionConflict) as exc:
        raise _Refused(str(exc)) from None
    await _announce(version)
    if args.json:
        print(orjson.dumps(version.public()).decode())
    else:
        print(f"applied version {version.number} ({version.hash}): {version.message}")
        print(_reach(version))
    return 0


async def _get(store: ConfigVersions, number: int | None) -> ConfigVersion:
    version = await store.config_get(number)
    if version is None:
        raise _Refused("no configuration stored yet" if number is None else f"no version {number}")
    return version


async def _announce(version: ConfigVersion) -> None:
    """Tell the gateways on the new version's Redis, if it has one (they poll anyway)."""
    from breakwater.runtime.stored_config import announcer, config_of

    config = config_of(version)
    if config.redis is not None:
        pubsub = announcer(config, os.environ)
        try:
            await pubsub.announce()
        finally:
            await pubsub.close()


def _reach(version: ConfigVersion) -> str:
    from breakwater.runtime.stored_config import config_of

    config = config_of(version)
    if config.redis is not None:
        return "Gateways following this store load it at once (announced on Redis pub/sub)."
    return (
        "Gateways following this store load it within 0.25 s (SQLite) or "
        f"{config.access.reload_s:g} s (PostgreSQL, access.reload_s)."
    )

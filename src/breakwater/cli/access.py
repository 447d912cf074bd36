"""``breakwater keys | teams | limits | audit``: manage virtual keys, teams and limits from a shell.

The commands work on the key store the config names (``access.store``, hashed with
``access.hash_secret``) directly, so they work whether or not a gateway is running, and they go
through the same ``AccessOperations`` and pydantic specs as the admin API: the same
checks, the same error messages, the same audit trail (the actor is ``cli:<login name>``).
Running gateways pick a change up at once when the config has Redis (the change is announced
on pub/sub); without it, within 1 s from a SQLite store (they watch its ``data_version``) and
within ``access.reload_s`` from PostgreSQL. Each write says which, on stderr.

A command that only reads (``list``, ``show``, ``audit``) never creates a SQLite store or its
hash secret: when the store is missing it exits 1 naming the path it looked for.

Exit status: 0 done; 2 bad input (nothing was written); 1 no such key, team or limits, or the
config or the key store cannot be used.

Here: the command line (the argparse set-up) and running a command against the store. What each
command does is in ``cli/access_commands.py``; how its result is shown, in ``cli/access_output.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import getpass
import os
import re
import sqlite3
import sys
from typing import Any

from breakwater.cli import access_commands as cmd
from breakwater.cli import access_output as out
from breakwater.cli.access_commands import Call, Op
from breakwater.cli.access_output import Shown
from breakwater.core.errors import BreakwaterError, NotFound
from breakwater.core.limits import PERIODS
from breakwater.engine.access.operations import AccessOperations
from breakwater.engine.access.store import AccessStore
from breakwater.engine.ports import SystemClock

_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhdw]?)")
_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}

#: the actions that change the store (the others only read it)
_WRITES = frozenset({"create", "update", "disable", "enable", "revoke", "rotate", "delete", "set"})

_UPDATE_NOTE = (
    "Only the options given change. Limit options (--rpm, --tpm, --max-concurrent, --budget-usd, "
    "--budget-period) replace the limits as a whole: give every limit it should keep (--no-limits "
    "removes them all). --route and --tag likewise replace the whole list."
)


def register(sub: Any) -> None:
    """Add the ``keys``, ``teams``, ``limits`` and ``audit`` subcommands to the ``breakwater`` parser's subparsers."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config", metavar="FILE", help="YAML config naming the key store (default: the embedded default)"
    )
    common.add_argument(
        "--format", default="table", choices=["table", "json"], help="table (default) or one JSON document"
    )

    keys = sub.add_parser("keys", help="create, list, change, rotate and revoke virtual keys")
    actions = keys.add_subparsers(dest="action", metavar="ACTION", required=True)
    create = _leaf(actions, "create", "make a key; it is printed once and never again", cmd.keys_create, common)
    _key_options(create, update=False)
    listing = _leaf(actions, "list", "list keys (revoked ones only with --all)", cmd.keys_list, common)
    listing.add_argument("--user", help="only this user's keys")
    listing.add_argument("--team", help="only this team's keys")
    listing.add_argument("--all", action="store_true", help="include revoked keys")
    _leaf(actions, "show", "one key", cmd.keys_show, common).add_argument("id")
    update = _leaf(actions, "update", "change a key's fields", cmd.keys_update, common, note=_UPDATE_NOTE)
    update.add_argument("id")
    _key_options(update, update=True)
    _leaf(actions, "disable", "stop a key until it is enabled again", cmd.keys_toggle, common).add_argument("id")
    _leaf(actions, "enable", "let a disabled key work again", cmd.keys_toggle, common).add_argument("id")
    _leaf(actions, "revoke", "end a key for good, at once", cmd.keys_revoke, common).add_argument("id")
    rotate = _leaf(
        actions, "rotate", "give a key a new secret; the old one works for --overlap", cmd.keys_rotate, common
    )
    rotate.add_argument("id")
    rotate.add_argument("--overlap", type=duration, default=3600.0, metavar="DURATION", help="(default: 1h)")

    teams = sub.add_parser("teams", help="teams: keys under shared limits and a shared budget")
    actions = teams.add_subparsers(dest="action", metavar="ACTION", required=True)
    create = _leaf(actions, "create", "make a team", cmd.teams_create, common)
    create.add_argument("name")
    _limit_options(create)
    _tag_option(create)
    _region_option(create)
    _leaf(actions, "list", "list teams", cmd.teams_list, common)
    _leaf(actions, "show", "one team", cmd.teams_show, common).add_argument("name")
    update = _leaf(actions, "update", "change a team's limits or tags", cmd.teams_update, common, note=_UPDATE_NOTE)
    update.add_argument("name")
    _limit_options(update, clearable=True)
    _tag_option(update, clearable=True)
    _region_option(update, clearable=True)
    _leaf(actions, "disable", "stop every key of the team", cmd.teams_toggle, common).add_argument("name")
    _leaf(actions, "enable", "let the team's keys work again", cmd.teams_toggle, common).add_argument("name")
    _leaf(actions, "delete", "delete a team no key belongs to", cmd.teams_delete, common).add_argument("name")

    limits = sub.add_parser("limits", help="limits and budgets per user ('*': every other user) or per tag")
    actions = limits.add_subparsers(dest="action", metavar="ACTION", required=True)
    put = _leaf(
        actions,
        "set",
        "set (replace) the limits of a user or a tag",
        cmd.limits_set,
        common,
        note="With no limit options the subject has no limits: a user entry then exempts that user from '*'.",
    )
    _subject(put)
    _limit_options(put)
    _leaf(actions, "list", "every per-user and per-tag entry", cmd.limits_list, common)
    _subject(_leaf(actions, "delete", "remove the limits of a user or a tag", cmd.limits_delete, common))

    audit = sub.add_parser("audit", parents=[common], help="who changed which key, team or limits, newest first")
    audit.add_argument(
        "--target", help="one record: key:<id> (or just the id), team:<name>, limits:user:<name>, limits:tag:<k=v>"
    )
    audit.add_argument("--limit", type=int, default=50, metavar="N", help="entries to show, 1-1000 (default: 50)")
    audit.set_defaults(run=run, op=cmd.audit)


def duration(text: str) -> float:
    """Seconds in ``90s``, ``15m``, ``12h``, ``30d``, ``2w`` or plain seconds (an argparse ``type``)."""
    match = _DURATION.fullmatch(text.strip().lower())
    if match is None:
        raise argparse.ArgumentTypeError(f"invalid duration {text!r}: expected e.g. 90s, 15m, 12h, 30d, 2w or seconds")
    return float(match[1]) * _SECONDS[match[2]]


def run(args: argparse.Namespace) -> int:
    """Run one command; exit 0 done, 2 bad input, 1 not found or the store cannot be used."""
    name = f"breakwater {args.command} {getattr(args, 'action', '')}".rstrip()
    try:
        shown = asyncio.run(_execute(args, name))
    except (NotFound, _Unusable) as exc:
        print(f"{name}: error: {exc}", file=sys.stderr)
        return 1
    except BreakwaterError as exc:  # InvalidRequest: nothing was written
        print(f"{name}: error: {exc}", file=sys.stderr)
        return 2
    out.emit(shown, args.format)
    return 0


# --- running a command ------------------------------------------------------------------------


class _Unusable(Exception):
    """The config, the hash secret or the key store cannot be used (the message says which)."""


async def _execute(args: argparse.Namespace, name: str) -> Shown:
    import asyncpg  # type: ignore[import-untyped]

    from breakwater.core.config import ConfigError
    from breakwater.engine.access.store import KeyConflict
    from breakwater.infra.credentials import CredentialError
    from breakwater.runtime.access import change_reach, hash_secret, invalidations, key_store
    from breakwater.runtime.loading import load_config

    try:
        config = load_config(args.config, os.environ)
    except ConfigError as exc:
        raise _Unusable(str(exc)) from None
    if not config.access.enabled:
        print(
            f"{name}: warning: access control is off (access.enabled: false), so keys are not checked until it is on",
            file=sys.stderr,
        )
    reads_only = getattr(args, "action", None) not in _WRITES
    try:
        store = key_store(config, os.environ)
        if reads_only:
            _require_store(store, args)
        secret = hash_secret(config, os.environ, create=not reads_only)
        pubsub = invalidations(config, os.environ)
    except (CredentialError, ValueError) as exc:
        raise _Unusable(f"access: {exc}") from None
    clock = SystemClock()
    admin = AccessOperations(
        store,
        secret,
        clock,
        announce=None if pubsub is None else pubsub.announce,
        routes=list(config.routes),
    )
    # OSError: a refused connection, a timeout, an unwritable file
    unreachable = (OSError, sqlite3.Error, asyncpg.PostgresError, asyncpg.InterfaceError)
    try:
        await store.open()
        op: Op = args.op
        shown = await op(Call(admin, args, login_actor(), clock))
        if getattr(args, "action", None) in _WRITES:
            shown = dataclasses.replace(shown, note=change_reach(config, os.environ))
        return shown
    except (*unreachable, KeyConflict) as exc:
        raise _Unusable(f"cannot use the key store: {type(exc).__name__}: {exc}") from None
    finally:
        # a store that failed already may fail to close too; the first failure is the one to report
        with contextlib.suppress(*unreachable):
            await store.close()
        if pubsub is not None:
            await pubsub.close()


def _require_store(store: AccessStore, args: argparse.Namespace) -> None:
    """A command that only reads refuses a SQLite store that does not exist instead of creating
    it: an empty new store would hide a wrong ``--config`` or current directory."""
    from breakwater.infra.keystore import SqliteKeyStore

    if isinstance(store, SqliteKeyStore) and not store.path.exists():
        source = args.config or "the embedded default config"
        verb = "show" if getattr(args, "action", None) == "show" else "list"
        raise _Unusable(
            f"no key store at {store.path.absolute()} (from access.store in {source}); nothing to {verb}"
            " — run a command that writes, e.g. breakwater keys create, or check --config"
        )


def login_actor() -> str:
    """``cli:<login name>``: who a command's change is by."""
    try:
        return f"cli:{getpass.getuser()}"
    except (OSError, KeyError):  # no login name in the environment or the password database
        return "cli:unknown"


# --- the options of keys, teams and limits ----------------------------------------------------


def _key_options(parser: argparse.ArgumentParser, *, update: bool) -> None:
    parser.add_argument("--name", help="a label for people")
    parser.add_argument("--user", help="the owner: requests made with the key are this user's")
    parser.add_argument("--team", help="a team the key belongs to (it must exist)")
    routes = parser.add_mutually_exclusive_group()
    routes.add_argument(
        "--route",
        dest="routes",
        action="append",
        metavar="ROUTE",
        help="a route the key may call (repeat; none: every)",
    )
    if update:
        routes.add_argument("--every-route", action="store_true", help="let the key call every route")
    expiry = parser.add_mutually_exclusive_group()
    expiry.add_argument("--expires-in", type=duration, metavar="DURATION", help="e.g. 90s, 15m, 12h, 30d, 2w")
    if update:
        expiry.add_argument("--no-expiry", action="store_true", help="the key never expires")
    _tag_option(parser, clearable=update)
    _limit_options(parser, clearable=update)
    _region_option(parser, clearable=update)


def _subject(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("scope", choices=["user", "tag"])
    parser.add_argument("subject", help="a user name ('*': every user without their own entry) or a tag key=value")


def _leaf(actions: Any, name: str, summary: str, op: Op, common: argparse.ArgumentParser, note: str = "") -> Any:
    parser = actions.add_parser(name, parents=[common], help=summary, description=f"{summary}. {note}".strip())
    parser.set_defaults(run=run, op=op)
    return parser


def _limit_options(parser: argparse.ArgumentParser, *, clearable: bool = False) -> None:
    group = parser.add_argument_group("limits (any of them replaces the limits as a whole)")
    group.add_argument("--rpm", type=int, metavar="N", help="requests per minute")
    group.add_argument("--tpm", type=int, metavar="N", help="tokens (input + output) per minute")
    group.add_argument("--max-concurrent", type=int, metavar="N", help="requests in flight at once")
    group.add_argument("--budget-usd", metavar="USD", help="spend cap in USD per --budget-period")
    group.add_argument("--budget-period", choices=PERIODS, help="calendar period in UTC (default: month)")
    if clearable:
        group.add_argument("--no-limits", action="store_true", help="remove every limit")


def _region_option(parser: argparse.ArgumentParser, *, clearable: bool = False) -> None:
    parser.add_argument(
        "--region",
        dest="regions",
        action="append",
        metavar="REGION",
        help="a region its requests may go to, e.g. eu (repeat; none: anywhere; docs/configuration.md)",
    )
    if clearable:
        parser.add_argument("--any-region", action="store_true", help="lift the region restriction")


def _tag_option(parser: argparse.ArgumentParser, *, clearable: bool = False) -> None:
    parser.add_argument("--tag", dest="tags", action="append", metavar="KEY=VALUE", help="a tag (repeat)")
    if clearable:
        parser.add_argument("--no-tags", action="store_true", help="remove every tag")

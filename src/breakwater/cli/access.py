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
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from breakwater.cli import access_output as out
from breakwater.cli.access_output import Json, Shown
from breakwater.core.errors import BreakwaterError, InvalidRequest, NotFound
from breakwater.core.keys import Team
from breakwater.core.limits import PERIODS
from breakwater.engine.access.operations import (
    AccessOperations,
    KeyPatch,
    KeySpec,
    LimitsSpec,
    TeamPatch,
    TeamSpec,
    parse,
)
from breakwater.engine.access.store import AccessStore
from breakwater.engine.ports import Clock, SystemClock

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
    create = _leaf(actions, "create", "make a key; it is printed once and never again", _keys_create, common)
    _key_options(create, update=False)
    listing = _leaf(actions, "list", "list keys (revoked ones only with --all)", _keys_list, common)
    listing.add_argument("--user", help="only this user's keys")
    listing.add_argument("--team", help="only this team's keys")
    listing.add_argument("--all", action="store_true", help="include revoked keys")
    _leaf(actions, "show", "one key", _keys_show, common).add_argument("id")
    update = _leaf(actions, "update", "change a key's fields", _keys_update, common, note=_UPDATE_NOTE)
    update.add_argument("id")
    _key_options(update, update=True)
    _leaf(actions, "disable", "stop a key until it is enabled again", _keys_toggle, common).add_argument("id")
    _leaf(actions, "enable", "let a disabled key work again", _keys_toggle, common).add_argument("id")
    _leaf(actions, "revoke", "end a key for good, at once", _keys_revoke, common).add_argument("id")
    rotate = _leaf(actions, "rotate", "give a key a new secret; the old one works for --overlap", _keys_rotate, common)
    rotate.add_argument("id")
    rotate.add_argument("--overlap", type=duration, default=3600.0, metavar="DURATION", help="(default: 1h)")

    teams = sub.add_parser("teams", help="teams: keys under shared limits and a shared budget")
    actions = teams.add_subparsers(dest="action", metavar="ACTION", required=True)
    create = _leaf(actions, "create", "make a team", _teams_create, common)
    create.add_argument("name")
    _limit_options(create)
    _tag_option(create)
    _leaf(actions, "list", "list teams", _teams_list, common)
    _leaf(actions, "show", "one team", _teams_show, common).add_argument("name")
    update = _leaf(actions, "update", "change a team's limits or tags", _teams_update, common, note=_UPDATE_NOTE)
    update.add_argument("name")
    _limit_options(update, clearable=True)
    _tag_option(update, clearable=True)
    _leaf(actions, "disable", "stop every key of the team", _teams_toggle, common).add_argument("name")
    _leaf(actions, "enable", "let the team's keys work again", _teams_toggle, common).add_argument("name")
    _leaf(actions, "delete", "delete a team no key belongs to", _teams_delete, common).add_argument("name")

    limits = sub.add_parser("limits", help="limits and budgets per user ('*': every other user) or per tag")
    actions = limits.add_subparsers(dest="action", metavar="ACTION", required=True)
    put = _leaf(
        actions,
        "set",
        "set (replace) the limits of a user or a tag",
        _limits_set,
        common,
        note="With no limit options the subject has no limits: a user entry then exempts that user from '*'.",
    )
    _subject(put)
    _limit_options(put)
    _leaf(actions, "list", "every per-user and per-tag entry", _limits_list, common)
    _subject(_leaf(actions, "delete", "remove the limits of a user or a tag", _limits_delete, common))

    audit = sub.add_parser("audit", parents=[common], help="who changed which key, team or limits, newest first")
    audit.add_argument(
        "--target", help="one record: key:<id> (or just the id), team:<name>, limits:user:<name>, limits:tag:<k=v>"
    )
    audit.add_argument("--limit", type=int, default=50, metavar="N", help="entries to show, 1-1000 (default: 50)")
    audit.set_defaults(run=run, op=_audit)


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


@dataclass(frozen=True, slots=True)
class _Call:
    """What an operation works with."""

    admin: AccessOperations
    args: argparse.Namespace
    actor: str
    clock: Clock


Op = Callable[[_Call], Awaitable[Shown]]


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
        shown = await op(_Call(admin, args, _actor(), clock))
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


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (OSError, KeyError):  # no login name in the environment or the password database
        return "cli:unknown"


# --- keys -------------------------------------------------------------------------------------


async def _keys_create(c: _Call) -> Shown:
    key, plain = await c.admin.create_key(parse(KeySpec, _key_input(c.args, update=False)), actor=c.actor)
    return Shown({**key.view(c.clock.time()), "key": plain}, out.draw_new_key)


async def _keys_list(c: _Call) -> Shown:
    a, now = c.args, c.clock.time()
    keys = [
        k.view(now)
        for k in await c.admin.keys()
        if a.user in (None, k.user) and a.team in (None, k.team) and (a.all or k.revoked_at is None)
    ]
    return Shown({"object": "list", "data": keys}, out.draw_keys)


async def _keys_show(c: _Call) -> Shown:
    return Shown((await c.admin.key(c.args.id)).view(c.clock.time()), out.draw_key)


async def _keys_update(c: _Call) -> Shown:
    patch = parse(KeyPatch, _key_input(c.args, update=True))
    return Shown((await c.admin.update_key(c.args.id, patch, actor=c.actor)).view(c.clock.time()), out.draw_key)


async def _keys_toggle(c: _Call) -> Shown:
    key = await c.admin.set_disabled(c.args.id, c.args.action == "disable", actor=c.actor)
    return Shown(key.view(c.clock.time()), out.draw_key)


async def _keys_revoke(c: _Call) -> Shown:
    return Shown((await c.admin.revoke(c.args.id, actor=c.actor)).view(c.clock.time()), out.draw_key)


async def _keys_rotate(c: _Call) -> Shown:
    key, plain = await c.admin.rotate(c.args.id, overlap_s=c.args.overlap, actor=c.actor)
    return Shown({**key.view(c.clock.time()), "key": plain}, out.draw_new_key)


def _key_input(args: argparse.Namespace, *, update: bool) -> Json:
    """The ``KeySpec`` / ``KeyPatch`` body the options give (only those given)."""
    data: Json = {
        "name": args.name,
        "user": args.user,
        "team": args.team,
        "routes": [] if getattr(args, "every_route", False) else args.routes,
        "tags": _tags(args),
        "limits": _limits(args),
        "expires_in_s": args.expires_in,
    }
    if getattr(args, "no_expiry", False):
        data["no_expiry"] = True
    given = {k: v for k, v in data.items() if v is not None}
    if update and not given:
        raise InvalidRequest("Nothing to change: give at least one option (see --help)")
    return given


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


# --- teams ------------------------------------------------------------------------------------


def _team_body(team: Team, **extra: Any) -> Json:
    return {"object": "team", **team.public(), **extra}


async def _teams_create(c: _Call) -> Shown:
    data = {"name": c.args.name, "limits": _limits(c.args), "tags": _tags(c.args)}
    spec = parse(TeamSpec, {k: v for k, v in data.items() if v is not None})
    return Shown(_team_body(await c.admin.create_team(spec, actor=c.actor)), out.draw_team)


async def _teams_list(c: _Call) -> Shown:
    return Shown({"object": "list", "data": [_team_body(t) for t in await c.admin.teams()]}, out.draw_teams)


async def _teams_show(c: _Call) -> Shown:
    return Shown(_team_body(await c.admin.team(c.args.name)), out.draw_team)


async def _teams_update(c: _Call) -> Shown:
    data = {k: v for k, v in {"limits": _limits(c.args), "tags": _tags(c.args)}.items() if v is not None}
    if not data:
        raise InvalidRequest("Nothing to change: give limit options, --tag, --no-limits or --no-tags")
    team = await c.admin.update_team(c.args.name, parse(TeamPatch, data), actor=c.actor)
    return Shown(_team_body(team), out.draw_team)


async def _teams_toggle(c: _Call) -> Shown:
    team = await c.admin.set_team_disabled(c.args.name, c.args.action == "disable", actor=c.actor)
    return Shown(_team_body(team), out.draw_team)


async def _teams_delete(c: _Call) -> Shown:
    return Shown(_team_body(await c.admin.delete_team(c.args.name, actor=c.actor), deleted=True), out.draw_team)


# --- per-user and per-tag limits, audit -------------------------------------------------------


async def _limits_set(c: _Call) -> Shown:
    spec = parse(LimitsSpec, _limits(c.args) or {})
    entry = await c.admin.set_limits(c.args.scope, c.args.subject, spec, actor=c.actor)
    return Shown(entry.public(), out.draw_subject_limits)


async def _limits_list(c: _Call) -> Shown:
    return Shown(
        {"object": "list", "data": [e.public() for e in await c.admin.subject_limits()]}, out.draw_subject_limits_list
    )


async def _limits_delete(c: _Call) -> Shown:
    entry = await c.admin.delete_limits(c.args.scope, c.args.subject, actor=c.actor)
    return Shown({**entry.public(), "deleted": True}, out.draw_subject_limits)


async def _audit(c: _Call) -> Shown:
    limit, target = c.args.limit, c.args.target
    if not 1 <= limit <= 1000:
        raise InvalidRequest("Invalid limit: must be between 1 and 1000", param="limit")
    if target is not None and target.startswith("key_"):
        target = f"key:{target}"
    entries = await c.admin.audit(limit=limit, target=target)
    return Shown({"object": "list", "data": [e.public() for e in entries]}, out.draw_audit)


def _subject(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("scope", choices=["user", "tag"])
    parser.add_argument("subject", help="a user name ('*': every user without their own entry) or a tag key=value")


# --- options shared by keys, teams and limits -------------------------------------------------


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


def _tag_option(parser: argparse.ArgumentParser, *, clearable: bool = False) -> None:
    parser.add_argument("--tag", dest="tags", action="append", metavar="KEY=VALUE", help="a tag (repeat)")
    if clearable:
        parser.add_argument("--no-tags", action="store_true", help="remove every tag")


def _limits(args: argparse.Namespace) -> Json | None:
    """The ``LimitsSpec`` body the limit options give; ``None`` when none is given."""
    given: Json = {n: getattr(args, n) for n in ("rpm", "tpm", "max_concurrent") if getattr(args, n) is not None}
    budget = {k: v for k, v in (("usd", args.budget_usd), ("period", args.budget_period)) if v is not None}
    if budget:
        given["budget"] = budget
    if getattr(args, "no_limits", False):
        if given:
            raise InvalidRequest("Invalid request: limits: give limit options or --no-limits, not both", param="limits")
        return {}
    return given or None


def _tags(args: argparse.Namespace) -> dict[str, str] | None:
    """The tags ``--tag key=value`` gives; ``None`` when none is given."""
    if getattr(args, "no_tags", False):
        if args.tags:
            raise InvalidRequest("Invalid request: tags: give --tag or --no-tags, not both", param="tags")
        return {}
    if args.tags is None:
        return None
    tags = {}
    for item in args.tags:
        key, sep, value = item.partition("=")
        if not sep:
            raise InvalidRequest(f"Invalid request: tags: '{item}' is not key=value", param="tags")
        tags[key] = value
    return tags

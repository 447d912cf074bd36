"""What each ``breakwater keys | teams | limits | audit`` command does, once ``cli/access.py`` has
parsed it and opened the key store.

A command turns its options into the admin API's body (``KeySpec``, ``KeyPatch``, ``TeamSpec``,
``TeamPatch``, ``LimitsSpec``), calls the same ``AccessOperations`` method the admin API does and
returns the resulting document with the way to draw it (``cli/access_output.py``).
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from breakwater.cli import access_output as out
from breakwater.cli.access_output import Json, Shown
from breakwater.core.errors import InvalidRequest
from breakwater.core.keys import Team
from breakwater.engine.access.operations import (
    AccessOperations,
    KeyPatch,
    KeySpec,
    LimitsSpec,
    TeamPatch,
    TeamSpec,
    parse,
)
from breakwater.engine.ports import Clock


@dataclass(frozen=True, slots=True)
class Call:
    """What an operation works with."""

    admin: AccessOperations
    args: argparse.Namespace
    actor: str
    clock: Clock


Op = Callable[[Call], Awaitable[Shown]]


# --- keys -------------------------------------------------------------------------------------


async def keys_create(c: Call) -> Shown:
    key, plain = await c.admin.create_key(parse(KeySpec, _key_input(c.args, update=False)), actor=c.actor)
    return Shown({**key.view(c.clock.time()), "key": plain}, out.draw_new_key)


async def keys_list(c: Call) -> Shown:
    a, now = c.args, c.clock.time()
    keys = [
        k.view(now)
        for k in await c.admin.keys()
        if a.user in (None, k.user) and a.team in (None, k.team) and (a.all or k.revoked_at is None)
    ]
    return Shown({"object": "list", "data": keys}, out.draw_keys)


async def keys_show(c: Call) -> Shown:
    return Shown((await c.admin.key(c.args.id)).view(c.clock.time()), out.draw_key)


async def keys_update(c: Call) -> Shown:
    patch = parse(KeyPatch, _key_input(c.args, update=True))
    return Shown((await c.admin.update_key(c.args.id, patch, actor=c.actor)).view(c.clock.time()), out.draw_key)


async def keys_toggle(c: Call) -> Shown:
    key = await c.admin.set_disabled(c.args.id, c.args.action == "disable", actor=c.actor)
    return Shown(key.view(c.clock.time()), out.draw_key)


async def keys_revoke(c: Call) -> Shown:
    return Shown((await c.admin.revoke(c.args.id, actor=c.actor)).view(c.clock.time()), out.draw_key)


async def keys_rotate(c: Call) -> Shown:
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
        "regions": _regions(args),
    }
    if getattr(args, "no_expiry", False):
        data["no_expiry"] = True
    given = {k: v for k, v in data.items() if v is not None}
    if update and not given:
        raise InvalidRequest("Nothing to change: give at least one option (see --help)")
    return given


# --- teams ------------------------------------------------------------------------------------


def _regions(args: argparse.Namespace) -> list[str] | None:
    """``--region`` values, ``[]`` for ``--any-region``, ``None`` when neither was given."""
    return [] if getattr(args, "any_region", False) else getattr(args, "regions", None)


def _team_body(team: Team, **extra: Any) -> Json:
    return {"object": "team", **team.public(), **extra}


async def teams_create(c: Call) -> Shown:
    data = {"name": c.args.name, "limits": _limits(c.args), "tags": _tags(c.args), "regions": _regions(c.args)}
    spec = parse(TeamSpec, {k: v for k, v in data.items() if v is not None})
    return Shown(_team_body(await c.admin.create_team(spec, actor=c.actor)), out.draw_team)


async def teams_list(c: Call) -> Shown:
    return Shown({"object": "list", "data": [_team_body(t) for t in await c.admin.teams()]}, out.draw_teams)


async def teams_show(c: Call) -> Shown:
    return Shown(_team_body(await c.admin.team(c.args.name)), out.draw_team)


async def teams_update(c: Call) -> Shown:
    given = {"limits": _limits(c.args), "tags": _tags(c.args), "regions": _regions(c.args)}
    data = {k: v for k, v in given.items() if v is not None}
    if not data:
        raise InvalidRequest(
            "Nothing to change: give limit options, --tag, --region, --no-limits, --no-tags or --any-region"
        )
    team = await c.admin.update_team(c.args.name, parse(TeamPatch, data), actor=c.actor)
    return Shown(_team_body(team), out.draw_team)


async def teams_toggle(c: Call) -> Shown:
    team = await c.admin.set_team_disabled(c.args.name, c.args.action == "disable", actor=c.actor)
    return Shown(_team_body(team), out.draw_team)


async def teams_delete(c: Call) -> Shown:
    return Shown(_team_body(await c.admin.delete_team(c.args.name, actor=c.actor), deleted=True), out.draw_team)


# --- per-user and per-tag limits, audit -------------------------------------------------------


async def limits_set(c: Call) -> Shown:
    spec = parse(LimitsSpec, _limits(c.args) or {})
    entry = await c.admin.set_limits(c.args.scope, c.args.subject, spec, actor=c.actor)
    return Shown(entry.public(), out.draw_subject_limits)


async def limits_list(c: Call) -> Shown:
    return Shown(
        {"object": "list", "data": [e.public() for e in await c.admin.subject_limits()]}, out.draw_subject_limits_list
    )


async def limits_delete(c: Call) -> Shown:
    entry = await c.admin.delete_limits(c.args.scope, c.args.subject, actor=c.actor)
    return Shown({**entry.public(), "deleted": True}, out.draw_subject_limits)


async def audit(c: Call) -> Shown:
    limit, target = c.args.limit, c.args.target
    if not 1 <= limit <= 1000:
        raise InvalidRequest("Invalid limit: must be between 1 and 1000", param="limit")
    if target is not None and target.startswith("key_"):
        target = f"key:{target}"
    entries = await c.admin.audit(limit=limit, target=target)
    return Shown({"object": "list", "data": [e.public() for e in entries]}, out.draw_audit)


# --- options shared by keys, teams and limits -------------------------------------------------


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

"""Keys and teams: list, create (the secret shown once), disable and enable, rotate.

Creating or rotating a key answers with a redirect (POST/redirect/GET): the new secret waits in a
one-time slot bound to the session (``reveal.py``) and ``GET /ui/keys?created=<token>`` shows it
once, so reloading that page neither posts the form again nor shows the secret a second time.

Every change goes through ``engine/access/operations.AccessOperations``, the same operations as
``/admin/keys`` and ``breakwater keys``, with the same validation and the same audit trail (the
actor is ``dashboard (<client address>)``). A form's fields become the admin API's JSON body, so
a bad field is the same 400 naming it.
"""

from __future__ import annotations

import math
from typing import Any

from breakwater.core.errors import InvalidRequest, NotFound
from breakwater.engine.access.operations import AccessOperations, KeySpec, TeamSpec, parse
from breakwater.server.ui.view import Page, PageHandler, Redirect, Reply, View

PERIODS = ("day", "week", "month", "total")
AUDIT_ROWS = 20


def _admin(view: View) -> AccessOperations:
    admin = view.runtime.access.admin
    if admin is None:
        raise NotFound("Access control is off (access.enabled: false): there are no keys or teams")
    return admin


async def keys_page(view: View) -> Reply:
    admin = view.runtime.access.admin
    if admin is None:
        return Page("keys.html", {"enabled": False, "keys": [], "teams": [], "audit": [], "created": None})
    token = view.query.get("created")
    # a HEAD (a link checker, a prefetch) never uses up the slot: only the page a person sees does
    created = view.reveals.take(view.session.id, token) if token and view.request.method == "GET" else None
    context = await _listing(view, admin, created)
    context["gone"] = bool(token) and created is None
    return Page("keys.html", context)


def _reveal(view: View, action: str, key_view: dict[str, Any], secret: str) -> Redirect:
    """Keep the new secret for this session's next page, and send the browser there."""
    token = view.reveals.keep(view.session.id, {"action": action, "key": key_view, "secret": secret})
    return Redirect(f"/ui/keys?created={token}")


async def _listing(view: View, admin: AccessOperations, created: dict[str, Any] | None) -> dict[str, Any]:
    keys = sorted((k.view(view.now) for k in await admin.keys()), key=lambda k: -k["created_at"])
    teams = [t.public() for t in await admin.teams()]
    audit = [e.public() for e in await admin.audit(limit=AUDIT_ROWS)]
    return {
        "enabled": True,
        "keys": keys,
        "teams": teams,
        "audit": audit,
        "created": created,
        "routes": sorted(view.runtime.config.routes),
        "periods": PERIODS,
    }


async def create_key(view: View) -> Reply:
    admin = _admin(view)
    f = view.form
    spec: dict[str, Any] = {
        "name": f.get("name", "").strip(),
        "user": f.get("user", "").strip(),
        "team": f.get("team", "").strip(),
        "routes": _words(f.get("routes", "")),
        "tags": _tags(f.get("tags", "")),
        "limits": _limits(f),
    }
    days = _number(f, "expires_in_days", float)
    if days is not None:
        spec["expires_in_s"] = days * 86400.0
    key, plain = await admin.create_key(parse(KeySpec, spec), actor=view.actor)
    return _reveal(view, "created", key.view(view.now), plain)


async def key_action(view: View) -> Reply:
    admin = _admin(view)
    key_id = view.form.get("key_id", "")
    action = view.form.get("action", "")
    if action in ("disable", "enable"):
        await admin.set_disabled(key_id, action == "disable", actor=view.actor)
        return Redirect("/ui/keys")
    if action == "rotate":
        overlap = _number(view.form, "overlap_s", float)
        key, plain = await admin.rotate(key_id, overlap_s=3600.0 if overlap is None else overlap, actor=view.actor)
        return _reveal(view, "rotated", key.view(view.now), plain)
    raise InvalidRequest("Unknown key action: disable, enable or rotate", param="action")


async def create_team(view: View) -> Reply:
    admin = _admin(view)
    spec = {"name": view.form.get("name", "").strip(), "limits": _limits(view.form)}
    await admin.create_team(parse(TeamSpec, spec), actor=view.actor)
    return Redirect("/ui/keys")


async def team_action(view: View) -> Reply:
    admin = _admin(view)
    action = view.form.get("action", "")
    if action not in ("disable", "enable"):
        raise InvalidRequest("Unknown team action: disable or enable", param="action")
    await admin.set_team_disabled(view.form.get("name", ""), action == "disable", actor=view.actor)
    return Redirect("/ui/keys")


def _words(text: str) -> list[str]:
    return [w.strip() for w in text.replace("\n", ",").split(",") if w.strip()]


def _tags(text: str) -> dict[str, str]:
    tags: dict[str, str] = {}
    for pair in _words(text):
        name, sep, value = pair.partition("=")
        if not sep:
            raise InvalidRequest(f"Tag {pair!r}: write tags as name=value, comma-separated", param="tags")
        tags[name.strip()] = value.strip()
    return tags


def _limits(form: dict[str, str]) -> dict[str, Any]:
    limits: dict[str, Any] = {}
    for name in ("rpm", "tpm", "max_concurrent"):
        value = _number(form, name, int)
        if value is not None:
            limits[name] = value
    usd = form.get("budget_usd", "").strip()
    if usd:
        period = form.get("budget_period", "month")
        limits["budget"] = {"usd": usd, "period": period}
    return limits


def _number(form: dict[str, str], name: str, kind: type[int] | type[float]) -> Any:
    text = form.get(name, "").strip()
    if not text:
        return None
    try:
        value = kind(text)
    except ValueError:
        value = None
    if value is None or not math.isfinite(value):
        raise InvalidRequest(f"{name} must be a number, got {text[:40]!r}", param=name)
    return value


ROUTES: dict[tuple[str, str], PageHandler] = {
    ("GET", "/ui/keys"): keys_page,
    ("POST", "/ui/keys/create"): create_key,
    ("POST", "/ui/keys/action"): key_action,
    ("POST", "/ui/teams/create"): create_team,
    ("POST", "/ui/teams/action"): team_action,
}

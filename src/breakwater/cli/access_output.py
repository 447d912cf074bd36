"""How ``breakwater keys | teams | limits | audit`` show their results.

Every command produces one JSON document in the admin API's shape (``key_view`` and the
records' ``public()``), so a script can move between the API and the CLI unchanged.
``--format table`` draws that same document for people, so the table and the JSON cannot
disagree about a record. Nothing here ever sees a key's hash; the key itself is in the
documents of ``create`` and ``rotate`` only, and is drawn once, unwrapped, so it can be copied.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

Json = dict[str, Any]

#: fields holding unix seconds, shown as UTC times
_TIMES = ("created_at", "expires_at", "revoked_at", "previous_until", "ts")
#: fields the audit's target already names, left out of "what changed"
_IDENTITY = ("id", "scope", "subject", "created_at")
_LONGEST_VALUE = 60


@dataclass(frozen=True, slots=True)
class Shown:
    """A command's result: its JSON document, how to draw that document as tables, and a note
    for people (when running gateways see a change), kept out of the document."""

    body: Json
    draw: Callable[[Json], None]
    note: str | None = None


def emit(shown: Shown, fmt: str) -> None:
    """Write the result on stdout: one indented JSON document (``json``) or tables (``table``);
    then the note, if any, on stderr (so stdout stays the document a script reads)."""
    if fmt == "json":
        sys.stdout.write(orjson.dumps(shown.body, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        shown.draw(shown.body)
    if shown.note:
        sys.stdout.flush()
        print(shown.note, file=sys.stderr)


def when(ts: float | None, empty: str = "-") -> str:
    """A unix time as ``2026-11-01 12:00 UTC``; ``empty`` for none."""
    return empty if ts is None else time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(ts))


def summary(limits: Json) -> str:
    """Limits in one short line: ``60 rpm, 100,000 tpm, 4 concurrent, $50/month``."""
    parts = []
    if "rpm" in limits:
        parts.append(f"{limits['rpm']:,} rpm")
    if "tpm" in limits:
        parts.append(f"{limits['tpm']:,} tpm")
    if "max_concurrent" in limits:
        parts.append(f"{limits['max_concurrent']:,} concurrent")
    budget = limits.get("budget")
    if budget:
        period = budget["period"]
        parts.append(f"${budget['usd']} total" if period == "total" else f"${budget['usd']}/{period}")
    return ", ".join(parts) or "none"


# --- keys -------------------------------------------------------------------------------------


def draw_new_key(body: Json) -> None:
    """A key just made (``create``, ``rotate``): the key itself, once, then its record."""
    from rich.text import Text

    console = _console()
    console.print()
    console.print(Text(f"New key for {body['id']} ({body['prefix']}):", style="bold"))
    console.print()
    # unwrapped and unstyled on a line of its own, so a double-click or a pipe copies it whole
    console.print(Text(body["key"]), soft_wrap=True)
    console.print()
    console.print(
        Text(
            "This key is shown only now and cannot be shown again: only its hash is stored. "
            "Copy it into your secret store.",
            style="bold yellow",
        )
    )
    if body.get("previous_prefix") and body.get("previous_until"):
        console.print(
            f"The previous key ({body['previous_prefix']}) keeps working until {when(body['previous_until'])}."
        )
    console.print()
    draw_key(body)


def draw_key(body: Json) -> None:
    """One key's record, a field per row."""
    rows = [
        ("id", body["id"]),
        ("name", body["name"] or "-"),
        ("prefix", body["prefix"]),
        ("user", body["user"] or "-"),
        ("team", body["team"] or "-"),
        ("routes", _routes(body["routes"])),
        ("regions", _regions(body.get("regions", []))),
        ("tags", _tags(body["tags"])),
        ("limits", summary(body["limits"])),
        ("status", body["status"]),
        ("created", when(body["created_at"])),
        ("expires", when(body["expires_at"], "never")),
    ]
    if body["revoked_at"] is not None:
        rows.append(("revoked", when(body["revoked_at"])))
    if body["previous_prefix"] and body["previous_until"]:
        rows.append(("previous key", f"{body['previous_prefix']} until {when(body['previous_until'])}"))
    _console().print(_fields(f"Key {body['id']}", rows))


def draw_keys(body: Json) -> None:
    """A list of keys, one per row."""
    table = _table(f"Keys ({len(body['data'])})", "id", "name", "prefix", "user", "team", "routes", "limits", "status")
    table.add_column("expires", no_wrap=True)
    for k in body["data"]:
        table.add_row(
            k["id"],
            k["name"],
            k["prefix"],
            k["user"],
            k["team"],
            _routes(k["routes"]),
            summary(k["limits"]),
            k["status"],
            when(k["expires_at"], "never"),
        )
    _console().print(table)


# --- teams and subject limits -----------------------------------------------------------------


def draw_team(body: Json) -> None:
    """One team's record; a deleted team is named in one line."""
    if body.get("deleted"):
        _console().print(f"Deleted team '{body['name']}'.")
        return
    rows = [
        ("name", body["name"]),
        ("limits", summary(body["limits"])),
        ("tags", _tags(body["tags"])),
        ("regions", _regions(body.get("regions", []))),
        ("status", "disabled" if body["disabled"] else "active"),
        ("created", when(body["created_at"])),
    ]
    _console().print(_fields(f"Team {body['name']}", rows))


def draw_teams(body: Json) -> None:
    """A list of teams, one per row."""
    table = _table(f"Teams ({len(body['data'])})", "name", "limits", "tags", "status", "created")
    for t in body["data"]:
        status = "disabled" if t["disabled"] else "active"
        table.add_row(t["name"], summary(t["limits"]), _tags(t["tags"]), status, when(t["created_at"]))
    _console().print(table)


def draw_subject_limits(body: Json) -> None:
    """Limits set for one user or tag; a deletion in one line."""
    if body.get("deleted"):
        _console().print(f"Deleted the limits of {body['scope']} '{body['subject']}'.")
        return
    _console().print(f"Limits of {body['scope']} '{body['subject']}': {summary(body['limits'])}")


def draw_subject_limits_list(body: Json) -> None:
    """Every per-user and per-tag limits entry, one per row."""
    table = _table(f"Per-user and per-tag limits ({len(body['data'])})", "scope", "subject", "limits", "set")
    for e in body["data"]:
        subject = f"{e['subject']} (every user without their own)" if e["subject"] == "*" else e["subject"]
        table.add_row(e["scope"], subject, summary(e["limits"]), when(e["created_at"]))
    _console().print(table)


# --- audit ------------------------------------------------------------------------------------


def draw_audit(body: Json) -> None:
    """Audit entries as the store returns them (newest first), with what each changed."""
    table = _table(f"Audit trail ({len(body['data'])} entries, newest first)", "time", "actor", "action", "target")
    table.add_column("what changed", overflow="fold")
    for e in body["data"]:
        table.add_row(
            when(e["ts"]), e["actor"], e["action"], e["target"], changes(e["target"], e["before"], e["after"])
        )
    _console().print(table)


def changes(target: str, before: Json | None, after: Json | None) -> str:
    """What an audit entry changed: ``field: old -> new; ...``, the fields set by a creation, or ``deleted``."""
    if after is None:
        return "deleted"
    skip = set(_IDENTITY) | ({"name"} if target.startswith("team:") else set())
    if before is None:
        made = [f"{name}={_value(name, v)}" for name, v in after.items() if name not in skip and _is_set(name, v)]
        return ", ".join(made) or "created"
    changed = [
        f"{name}: {_value(name, before.get(name))} -> {_value(name, after.get(name))}"
        for name in after
        if name not in skip and before.get(name) != after.get(name)
    ]
    return "; ".join(changed) or "no change"


def _is_set(name: str, value: Any) -> bool:
    return name == "routes" or bool(value)


def _value(name: str, value: Any) -> str:
    if value is None:
        text = "-"
    elif name in _TIMES:
        text = when(value)
    elif name == "limits":
        text = summary(value)
    elif name == "routes":
        text = _routes(value)
    elif isinstance(value, dict):
        text = _tags(value)
    elif isinstance(value, bool):
        text = str(value).lower()
    else:
        text = str(value) or "''"
    return text if len(text) <= _LONGEST_VALUE else text[: _LONGEST_VALUE - 3] + "..."


# --- shared -----------------------------------------------------------------------------------


def _regions(regions: list[str]) -> str:
    return ", ".join(regions) if regions else "(anywhere)"


def _routes(routes: list[str]) -> str:
    return ", ".join(routes) if routes else "(every route)"


def _tags(tags: dict[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in tags.items()) or "-"


def _console() -> Console:
    from rich.console import Console

    # markup off: names and tags are the operator's text, never rich markup; piped into a file
    # or another program, a table keeps its full width instead of 80 columns
    return Console(width=None if sys.stdout.isatty() else 200, markup=False, highlight=False)


def _table(title: str, *columns: str) -> Table:
    from rich.table import Table

    table = Table(title=title)
    for name in columns:
        table.add_column(name, no_wrap=name in ("id", "prefix", "status", "time", "created", "set"))
    return table


def _fields(title: str, rows: list[tuple[str, str]]) -> Table:
    from rich.table import Table

    table = Table(title=title, show_header=False)
    table.add_column("field", style="bold", no_wrap=True)
    table.add_column("value")
    for name, value in rows:
        table.add_row(name, value)
    return table

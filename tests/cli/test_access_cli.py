"""``breakwater keys | teams | limits | audit``: the key store from a shell, with the admin API's checks.

Each test runs the commands in-process against a SQLite key store of its own (one test uses
PostgreSQL, in a schema of its own, and one Redis, on a channel of its own), and checks what
they print and what a gateway's ``Directory`` then makes of the keys.
"""

from __future__ import annotations

import asyncio
import getpass
import json
import os
import re
import uuid
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml

from breakwater.cli.access_output import changes
from breakwater.cli.main import main
from breakwater.core.errors import AuthenticationFailed
from breakwater.engine.access.directory import Directory
from breakwater.engine.ports import SystemClock
from breakwater.infra.keystore import store_for
from breakwater.runtime.access import hash_secret
from breakwater.runtime.loading import load_config
from tests.conftest import require_service

SECRET_VAR = "BW_TEST_HASH"
SECRET = "cli-test-hash-secret-0123456789abcdef"
KEY = re.compile(r"bw-[A-Za-z0-9_-]{43}")
PG_DSN = "postgresql://postgres@127.0.0.1:5432/test"


def _write_config(tmp_path: Path, access: dict[str, Any], **extra: Any) -> str:
    config = {
        "providers": {"m": {"type": "mock"}},
        "deployments": {"d": {"provider": "m", "model": "mock-gpt"}},
        "routes": {"mock": {"deployments": ["d"]}, "other": {"deployments": ["d"]}},
        "access": access,
        **extra,
    }
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return str(path)


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A config with an empty SQLite key store of the test's own and its hash secret in the environment."""
    monkeypatch.setenv(SECRET_VAR, SECRET)
    return _write_config(tmp_path, {"store": f"sqlite:///{tmp_path}/keys.db", "hash_secret": f"env:{SECRET_VAR}"})


class Cli:
    """Runs ``breakwater`` in-process against one config and captures what it prints."""

    def __init__(self, config: str, capsys: pytest.CaptureFixture[str]) -> None:
        self.config = config
        self._capsys = capsys
        self.err = ""

    def __call__(self, *args: str, expect: int = 0) -> str:
        """stdout of ``breakwater <args> --config <config>``, checking the exit status."""
        self._capsys.readouterr()
        status = main([*args, "--config", self.config])
        out, self.err = self._capsys.readouterr()
        assert status == expect, f"exit {status}, expected {expect}: {self.err}"
        return out

    def json(self, *args: str) -> Any:
        """The JSON document ``breakwater <args> --format json`` prints."""
        return json.loads(self(*args, "--format", "json"))

    def new_key(self, *args: str) -> dict[str, Any]:
        """``keys create <args>`` as JSON: the key's view plus ``key``."""
        body: dict[str, Any] = self.json("keys", "create", *args)
        return body


@pytest.fixture
def bw(config: str, capsys: pytest.CaptureFixture[str]) -> Cli:
    return Cli(config, capsys)


def _authenticate(config_path: str, *credentials: str) -> list[str]:
    """What a gateway's directory over the same store makes of each credential: the key's id, or the refusal's code."""

    async def check() -> list[str]:
        config = load_config(config_path, os.environ)
        store = store_for(config.access.store)
        await store.open()
        try:
            directory = Directory(store, hash_secret(config, os.environ), SystemClock())
            await directory.refresh(force=True)
            found = []
            for credential in credentials:
                try:
                    key, _team = directory.authenticate(credential)
                    found.append(key.id)
                except AuthenticationFailed as exc:
                    found.append(str(exc.code))
            return found
        finally:
            await store.close()

    return asyncio.run(check())


# --- keys -------------------------------------------------------------------------------------


def test_create_prints_the_key_once_and_list_shows_only_its_prefix(bw: Cli) -> None:
    """``keys create`` prints the bw- key exactly once with a warning; ``keys list`` shows its prefix, never the key."""
    out = bw("keys", "create", "--name", "ci", "--user", "alice", "--route", "mock")
    keys = KEY.findall(out)
    assert len(keys) == 1 and out.count(keys[0]) == 1
    assert "cannot be shown again" in out
    listed = bw("keys", "list")
    assert keys[0][:11] in listed and "alice" in listed
    assert keys[0] not in listed and not KEY.search(listed)


def test_json_output_parses_and_has_no_hash(bw: Cli) -> None:
    """--format json prints one document per command: the key's view (with ``key`` only on create), never a hash."""
    created = bw.new_key("--name", "ci", "--rpm", "60", "--budget-usd", "12.50", "--budget-period", "week")
    assert KEY.fullmatch(created["key"]) and created["prefix"] == created["key"][:11]
    assert created["status"] == "active"
    assert created["limits"] == {"rpm": 60, "budget": {"usd": "12.50", "period": "week"}}
    shown = bw.json("keys", "show", created["id"])
    assert shown == {k: v for k, v in created.items() if k != "key"}
    listed = bw.json("keys", "list")
    assert [k["id"] for k in listed["data"]] == [created["id"]]
    raw = bw("keys", "list", "--format", "json") + bw("keys", "show", created["id"], "--format", "json")
    assert "hash" not in raw and created["key"] not in raw


def test_created_key_authenticates_until_revoked(bw: Cli, config: str) -> None:
    """A created key opens the gateway's directory; after ``keys revoke`` it is refused as key_revoked and hidden from list."""
    created = bw.new_key("--user", "alice")
    assert _authenticate(config, created["key"]) == [created["id"]]
    assert bw.json("keys", "revoke", created["id"])["status"] == "revoked"
    assert _authenticate(config, created["key"]) == ["key_revoked"]
    assert bw.json("keys", "list")["data"] == []
    assert [k["status"] for k in bw.json("keys", "list", "--all")["data"]] == ["revoked"]


def test_disable_and_enable(bw: Cli, config: str) -> None:
    """``keys disable`` stops a key (key_disabled) and ``keys enable`` lets it work again."""
    created = bw.new_key()
    assert bw.json("keys", "disable", created["id"])["status"] == "disabled"
    assert _authenticate(config, created["key"]) == ["key_disabled"]
    assert bw.json("keys", "enable", created["id"])["status"] == "active"
    assert _authenticate(config, created["key"]) == [created["id"]]


def test_rotate_prints_a_new_key_and_both_work_within_the_overlap(bw: Cli, config: str) -> None:
    """``keys rotate --overlap 1h`` prints a new key once; old and new both open the same key until the overlap ends."""
    created = bw.new_key()
    out = bw("keys", "rotate", created["id"], "--overlap", "1h")
    new = KEY.findall(out)
    assert len(new) == 1 and new[0] != created["key"] and "cannot be shown again" in out
    assert _authenticate(config, created["key"], new[0]) == [created["id"], created["id"]]
    shown = bw.json("keys", "show", created["id"])
    assert shown["status"] == "rotating" and shown["previous_prefix"] == created["prefix"]
    # a rotation with no overlap ends the previous secret at once; the one before is forgotten
    newest = bw.json("keys", "rotate", created["id"], "--overlap", "0")["key"]
    assert _authenticate(config, newest, new[0], created["key"]) == [created["id"], "key_rotated", "invalid_api_key"]


def test_update_replaces_routes_limits_and_tags(bw: Cli) -> None:
    """``keys update`` changes only the options given; limits, routes and tags are replaced as a whole."""
    key_id = bw.new_key("--route", "mock", "--rpm", "10", "--tpm", "1000", "--tag", "env=prod", "--expires-in", "30d")[
        "id"
    ]
    updated = bw.json("keys", "update", key_id, "--route", "other", "--rpm", "5", "--name", "renamed")
    assert updated["routes"] == ["other"] and updated["limits"] == {"rpm": 5}
    assert updated["tags"] == {"env": "prod"} and updated["name"] == "renamed" and updated["expires_at"] is not None
    cleared = bw.json("keys", "update", key_id, "--every-route", "--no-limits", "--no-tags", "--no-expiry")
    assert (cleared["routes"], cleared["limits"], cleared["tags"], cleared["expires_at"]) == ([], {}, {}, None)


def test_regions_restrict_keys_and_teams(bw: Cli) -> None:
    """``--region`` (repeat) sets where a key's or team's requests may go; ``--any-region`` lifts it."""
    key = bw.new_key("--region", "eu", "--region", "ch")
    assert key["regions"] == ["eu", "ch"]
    assert "eu, ch" in bw("keys", "show", key["id"])
    assert bw.json("keys", "update", key["id"], "--any-region")["regions"] == []
    assert bw.json("teams", "create", "emea", "--region", "eu")["regions"] == ["eu"]
    assert bw.json("teams", "update", "emea", "--any-region")["regions"] == []
    bw("keys", "create", "--region", "EU West", expect=2)


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["--rpm", "0"], "limits.rpm"),
        (["--max-concurrent", "0"], "limits.max_concurrent"),
        (["--budget-usd", "-1"], "limits.budget.usd"),
        (["--budget-period", "day"], "limits.budget.usd"),
        (["--team", "nope"], "team 'nope'"),
        (["--route", "nope"], "route 'nope'"),
        (["--tag", "nokv"], "tags"),
        (["--expires-in", "0"], "expires_in_s"),
        (["--name", "x" * 129], "name"),
    ],
)
def test_bad_input_exits_2_and_writes_nothing(bw: Cli, args: list[str], field: str) -> None:
    """Input the admin API refuses exits 2 with a message naming the field, for create and update alike, writing nothing."""
    key_id = bw.new_key()["id"]
    before = bw("audit", "--format", "json")
    bw("keys", "create", *args, expect=2)
    assert field in bw.err and "Traceback" not in bw.err
    bw("keys", "update", key_id, *args, expect=2)
    assert field in bw.err
    assert bw("audit", "--format", "json") == before
    assert len(bw.json("keys", "list")["data"]) == 1


@pytest.mark.parametrize(
    "args",
    [
        ["keys", "create", "--expires-in", "soon"],
        ["keys", "create", "--rpm", "many"],
        ["keys", "create", "--budget-period", "year"],
        ["keys", "update", "key_x", "--expires-in", "1h", "--no-expiry"],
        ["keys", "frobnicate"],
        ["keys"],
    ],
)
def test_malformed_arguments_exit_2(bw: Cli, args: list[str]) -> None:
    """Arguments argparse refuses (a bad duration, number or choice, conflicting options) exit 2."""
    with pytest.raises(SystemExit) as exited:
        bw(*args)
    assert exited.value.code == 2


def test_update_without_options_exits_2(bw: Cli) -> None:
    """``keys update ID`` with nothing to change is refused rather than audited as a no-op."""
    key_id = bw.new_key()["id"]
    bw("keys", "update", key_id, expect=2)
    assert "Nothing to change" in bw.err


@pytest.mark.parametrize(
    "args",
    [
        ["keys", "show", "key_nope"],
        ["keys", "update", "key_nope", "--rpm", "5"],
        ["keys", "disable", "key_nope"],
        ["keys", "revoke", "key_nope"],
        ["keys", "rotate", "key_nope"],
    ],
)
def test_unknown_key_id_exits_1(bw: Cli, args: list[str]) -> None:
    """A key id the store does not hold exits 1, saying so."""
    bw.new_key()  # the store exists (a missing one is refused by reads: tests/cli/test_config_directory.py)
    bw(*args, expect=1)
    assert "No key with id 'key_nope'" in bw.err


# --- teams and limits -------------------------------------------------------------------------


def test_team_lifecycle(bw: Cli, config: str) -> None:
    """Teams are created, listed, updated, disabled (stopping their keys) and deleted only once no key is in them."""
    team = bw.json("teams", "create", "t1", "--rpm", "100", "--budget-usd", "50", "--tag", "cost=eng")
    assert team["limits"] == {"rpm": 100, "budget": {"usd": "50", "period": "month"}}
    bw("teams", "create", "t1", expect=2)
    assert "exists already" in bw.err
    listed = bw("teams", "list")
    assert "t1" in listed and "100 rpm, $50/month" in listed
    assert bw.json("teams", "update", "t1", "--tpm", "5000")["limits"] == {"tpm": 5000}
    key = bw.new_key("--team", "t1")
    assert bw.json("teams", "disable", "t1")["disabled"] is True
    assert _authenticate(config, key["key"]) == ["team_disabled"]
    assert bw.json("teams", "enable", "t1")["disabled"] is False
    bw("teams", "delete", "t1", expect=2)
    assert "still has keys" in bw.err and key["id"] in bw.err
    bw("keys", "revoke", key["id"])
    assert bw.json("teams", "delete", "t1")["deleted"] is True
    assert bw.json("teams", "list")["data"] == []
    bw("teams", "show", "t1", expect=1)
    assert "No team named 't1'" in bw.err


def test_team_name_is_checked(bw: Cli) -> None:
    """A team name the admin API refuses exits 2 naming the field."""
    bw("teams", "create", "-bad name", expect=2)
    assert "name" in bw.err


def test_subject_limits_set_list_delete(bw: Cli) -> None:
    """Limits for every user ('*') and for the tag feature=search are set, listed and deleted; a bad tag subject exits 2."""
    assert bw.json("limits", "set", "user", "*", "--rpm", "5")["limits"] == {"rpm": 5}
    tag = bw.json("limits", "set", "tag", "feature=search", "--budget-usd", "3", "--budget-period", "day")
    assert tag["limits"] == {"budget": {"usd": "3", "period": "day"}}
    listed = bw.json("limits", "list")["data"]
    assert {(e["scope"], e["subject"]) for e in listed} == {("user", "*"), ("tag", "feature=search")}
    table = bw("limits", "list")
    assert "feature=search" in table and "every user without their own" in table and "$3/day" in table
    assert bw.json("limits", "delete", "user", "*")["deleted"] is True
    bw("limits", "delete", "user", "*", expect=1)
    assert [e["subject"] for e in bw.json("limits", "list")["data"]] == ["feature=search"]
    bw("limits", "set", "tag", "nokv", "--rpm", "1", expect=2)
    assert "key=value" in bw.err


# --- audit ------------------------------------------------------------------------------------


def test_audit_lists_actions_newest_first_without_secrets(bw: Cli) -> None:
    """``audit`` lists each change with actor cli:<login>, newest first, what changed, and never a key or a hash."""
    created = bw.new_key("--rpm", "10")
    bw("keys", "update", created["id"], "--rpm", "20")
    rotated = bw.json("keys", "rotate", created["id"])
    bw("limits", "set", "tag", "feature=search", "--rpm", "3")
    entries = bw.json("audit")["data"]
    assert [e["action"] for e in entries] == ["limits.set", "key.rotate", "key.update", "key.create"]
    assert {e["actor"] for e in entries} == {f"cli:{getpass.getuser()}"}
    assert [e["seq"] for e in entries] == sorted((e["seq"] for e in entries), reverse=True)
    assert entries[2]["before"]["limits"] == {"rpm": 10} and entries[2]["after"]["limits"] == {"rpm": 20}
    raw = bw("audit", "--format", "json") + bw("audit")
    assert not KEY.search(raw) and "hash" not in raw and SECRET not in raw
    assert created["key"] not in raw and rotated["key"] not in raw
    assert "10 rpm -> 20 rpm" in bw("audit", "--target", created["id"])
    assert [e["action"] for e in bw.json("audit", "--target", f"key:{created['id']}", "--limit", "2")["data"]] == [
        "key.rotate",
        "key.update",
    ]
    bw("audit", "--limit", "0", expect=2)


def test_changes_are_shown_compactly() -> None:
    """An audit entry's change is shown as the fields that differ, old -> new; a creation as the fields it set."""
    before = {"id": "key_1", "routes": ["mock"], "limits": {"rpm": 10}, "disabled": False, "name": "a"}
    after = {"id": "key_1", "routes": ["other"], "limits": {"rpm": 5}, "disabled": True, "name": "a"}
    assert (
        changes("key:key_1", before, after) == "routes: mock -> other; limits: 10 rpm -> 5 rpm; disabled: false -> true"
    )
    assert changes("key:key_1", None, after) == "routes=other, limits=5 rpm, disabled=true, name=a"
    assert changes("team:t", {"name": "t"}, None) == "deleted"


# --- configs and stores -----------------------------------------------------------------------


def test_access_off_still_writes_the_store_with_a_warning(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """With access.enabled false the commands still work on the store, warning on stderr that keys are not checked."""
    bw = Cli(_write_config(tmp_path, {"enabled": False, "store": f"sqlite:///{tmp_path}/keys.db"}), capsys)
    created = bw.new_key()
    assert "access control is off" in bw.err
    assert bw.json("keys", "list")["data"][0]["id"] == created["id"]


def test_unset_hash_secret_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A hash_secret reference to an unset variable exits 1 naming the variable."""
    access = {"store": f"sqlite:///{tmp_path}/keys.db", "hash_secret": "env:BW_TEST_HASH_UNSET"}
    bw = Cli(_write_config(tmp_path, access), capsys)
    bw("keys", "create", expect=1)
    assert "BW_TEST_HASH_UNSET" in bw.err
    assert not (tmp_path / "keys.db").exists()


def test_unreachable_store_exits_1_without_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A key store that refuses connections exits 1 with a one-line message, not a traceback."""
    monkeypatch.setenv(SECRET_VAR, SECRET)
    access = {"store": "postgresql://postgres@127.0.0.1:1/test", "hash_secret": f"env:{SECRET_VAR}"}
    bw = Cli(_write_config(tmp_path, access), capsys)
    bw("keys", "create", expect=1)
    assert "cannot use the key store" in bw.err and "Traceback" not in bw.err


def test_change_is_announced_on_redis(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """With a redis section, each change is announced on <namespace>access so running gateways reload at once."""
    require_service("Redis", "127.0.0.1", 6379)
    monkeypatch.setenv(SECRET_VAR, SECRET)
    namespace = f"bwtest-{uuid.uuid4().hex}:"
    access = {"store": f"sqlite:///{tmp_path}/keys.db", "hash_secret": f"env:{SECRET_VAR}"}
    bw = Cli(_write_config(tmp_path, access, redis={"url": "redis://127.0.0.1:6379/0", "namespace": namespace}), capsys)
    client = redis.Redis(host="127.0.0.1", port=6379)
    pubsub = client.pubsub()  # type: ignore[no-untyped-call]
    try:
        pubsub.subscribe(f"{namespace}access")
        subscribed = pubsub.get_message(timeout=2)
        assert subscribed is not None and subscribed["type"] == "subscribe"
        bw.new_key()
        message = pubsub.get_message(ignore_subscribe_messages=True, timeout=5)
        assert message is not None and message["data"] == b"changed"
    finally:
        pubsub.close()
        client.close()


def test_postgresql_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], pg_schema: str
) -> None:
    """Against a PostgreSQL store the commands work the same: create, authenticate, revoke, audit."""
    monkeypatch.setenv(SECRET_VAR, SECRET)
    access = {"store": f"{PG_DSN}?search_path={pg_schema}", "hash_secret": f"env:{SECRET_VAR}"}
    config = _write_config(tmp_path, access)
    bw = Cli(config, capsys)
    bw("teams", "create", "t1", "--rpm", "10")
    created = bw.new_key("--team", "t1", "--route", "mock")
    assert _authenticate(config, created["key"]) == [created["id"]]
    bw("keys", "revoke", created["id"])
    assert _authenticate(config, created["key"]) == ["key_revoked"]
    assert [e["action"] for e in bw.json("audit")["data"]] == ["key.revoke", "key.create", "team.create"]

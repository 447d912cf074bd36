"""Dashboard sessions (server/ui/session.py): signed, expiring, shared by workers with the same admin key."""

from __future__ import annotations

from breakwater.server.admin import AdminAuth
from breakwater.server.ui.session import KEY_LABEL, SESSION_S, Sessions


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


KEY = AdminAuth("adm-one", open_without_key=False).derive(KEY_LABEL)


def test_another_worker_with_the_same_admin_key_accepts_the_session() -> None:
    """A cookie issued by one process is read by another that holds the same admin key, with the same CSRF token."""
    clock = Clock(1_800_000_000.0)
    session, cookie = Sessions(clock).issue(KEY)
    other = Sessions(clock).read(AdminAuth("adm-one", open_without_key=False).derive(KEY_LABEL), cookie)
    assert other == session


def test_a_new_admin_key_ends_every_session() -> None:
    """A session signed under the old admin key is not one under a new key."""
    clock = Clock(1_800_000_000.0)
    sessions = Sessions(clock)
    _, cookie = sessions.issue(KEY)
    assert sessions.read(AdminAuth("adm-two", open_without_key=False).derive(KEY_LABEL), cookie) is None


def test_a_session_expires() -> None:
    """A session is read until its expiry and not after."""
    clock = Clock(1_800_000_000.0)
    sessions = Sessions(clock)
    _, cookie = sessions.issue(KEY)
    clock.now += SESSION_S - 1
    assert sessions.read(KEY, cookie) is not None
    clock.now += 1
    assert sessions.read(KEY, cookie) is None


def test_a_revoked_session_is_refused_and_forgotten_once_expired() -> None:
    """Logging out refuses the id in this process; the id is dropped from memory after its expiry."""
    clock = Clock(1_800_000_000.0)
    sessions = Sessions(clock)
    session, cookie = sessions.issue(KEY)
    sessions.revoke(session)
    assert sessions.read(KEY, cookie) is None
    clock.now += SESSION_S + 1
    sessions.revoke(sessions.issue(KEY)[0])
    assert session.id not in sessions._revoked


def test_open_mode_sessions_are_this_process_s_own() -> None:
    """Without an admin key, a session is signed by a key the process drew: another process refuses it."""
    clock = Clock(1_800_000_000.0)
    session, cookie = Sessions(clock).issue(None)
    assert Sessions(clock).read(None, cookie) is None
    assert session.csrf

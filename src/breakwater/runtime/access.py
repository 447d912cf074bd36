"""Access control and limits as the app runs them, built from the config.

``AccessLayer`` owns the key store, the directory (keys in memory), the limit counters (memory,
or Redis with local counters for outages), the quota, the gatekeeper every request passes, the
admin operations and the Redis pub/sub that keeps replicas' directories current; it starts and
stops them with the app. ``key_store`` and ``hash_secret`` are shared with the CLI, so
``breakwater keys ...`` writes the same store with the same secret as the gateway.
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from breakwater.core.config import Config
from breakwater.engine.access.directory import Directory
from breakwater.engine.access.operations import AccessOperations
from breakwater.engine.access.store import AccessStore
from breakwater.engine.limits.checks import BudgetAlert, Sessions
from breakwater.engine.limits.quota import Quota
from breakwater.engine.ports import Clock, Counters
from breakwater.infra.counters.memory import MemoryCounters
from breakwater.infra.credentials import CredentialError, is_reference, resolve, resolve_optional
from breakwater.infra.keystore import store_for

if TYPE_CHECKING:  # redis-py is imported only by a gateway that uses Redis
    from breakwater.infra.invalidation import RedisInvalidations

log = logging.getLogger("breakwater.access")

#: seconds between checks of the key store's change signal (SQLite's ``data_version``): a change
#: another process makes (``breakwater keys ...``) is live within this, plus one reload
WATCH_S = 0.25


def key_store(config: Config, environ: Mapping[str, str]) -> AccessStore:
    """The access store the config names (its ``env:`` / ``file:`` reference resolved)."""
    store: AccessStore = store_for(resolve_optional(config.access.store, environ))
    return store


def hash_secret(config: Config, environ: Mapping[str, str], *, create: bool = True) -> bytes:
    """The secret keys are hashed with: ``access.hash_secret``, or for a SQLite store the random
    secret kept beside it in ``<file>.secret`` (created on first use, readable by its owner only).

    Args:
        config: the config naming the store and the secret.
        environ: where references are resolved.
        create: make the secret file if it is missing (``False`` for commands that only read).

    Raises:
        CredentialError: the reference names nothing, or the secret file cannot be made (or is
            missing, without ``create``).
    """
    ref = config.access.hash_secret
    if ref is not None:
        return (resolve(ref, environ) or "").encode()
    url = resolve_optional(config.access.store, environ)
    if not url.startswith("sqlite:///"):
        raise CredentialError("access.hash_secret is required with a shared key store")
    path = Path(url.removeprefix("sqlite:///") + ".secret")
    if not create and not path.exists():
        raise CredentialError(f"no key hash secret at {path.absolute()} beside the key store")
    try:
        return _secret_file(path)
    except OSError as exc:
        raise CredentialError(f"cannot read or create the key hash secret {path}: {exc.strerror}") from None


def _secret_file(path: Path) -> bytes:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # written aside, then linked into place: of several processes starting at once, one wins
        # and all read the same secret
        temp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, secrets.token_hex(32).encode())
        finally:
            os.close(fd)
        try:
            os.link(temp, path)
        except FileExistsError:
            pass
        finally:
            temp.unlink()
    secret = path.read_bytes().strip()
    if len(secret) < 32:
        raise OSError(0, f"the secret in {path} is too short")
    return secret


def change_reach(config: Config, environ: Mapping[str, str]) -> str:
    """When running gateways act on a change made to the config's key store from elsewhere
    (what ``breakwater keys ...`` tells its user after a write)."""
    prefix = "Running gateways using this key store pick this up"
    if config.redis is not None:
        return f"{prefix} at once (announced on Redis pub/sub)."
    if resolve_optional(config.access.store, environ).startswith("sqlite:///"):
        return f"{prefix} within 1 s."
    return f"{prefix} within {config.access.reload_s:g} s (access.reload_s; with redis: at once)."


def invalidations(config: Config, environ: Mapping[str, str]) -> RedisInvalidations | None:
    """Pub/sub between replicas, when the config has a Redis."""
    if config.redis is None:
        return None
    from breakwater.infra.invalidation import RedisInvalidations

    r = config.redis
    return RedisInvalidations(
        resolve_optional(r.url, environ), namespace=r.namespace, timeout_s=max(r.timeout_ms / 1000, 0.5)
    )


def _counters(config: Config, environ: Mapping[str, str]) -> tuple[Counters, Counters | None]:
    """(the counters, local counters for when they are unreachable)."""
    if config.limits.backend == "memory" or config.redis is None:
        return MemoryCounters(), None
    from breakwater.infra.counters.redis import RedisCounters

    r = config.redis
    url = resolve_optional(r.url, environ)
    # a request waits redis.timeout_ms for its admission (Quota.wait_s); the call itself may take
    # longer in the background, so that what a late admission reserved can be given back
    bound = max(1.0, 10 * r.timeout_ms / 1000)
    return RedisCounters(url, namespace=r.namespace, timeout_s=bound), MemoryCounters()


class AccessLayer:
    """Keys, limits and budgets for one app.

    Args:
        config: the validated config.
        environ: where references are resolved.
        clock: expiry, windows and periods.
        on_alert: receives budget alerts.

    It outlives a reload that leaves ``access``, ``limits`` and ``redis`` as they were (the
    counters keep their windows); each running configuration puts its own ``Gatekeeper`` (its
    routes, prices) in front of the directory and the quota.
    """

    def __init__(
        self,
        config: Config,
        environ: Mapping[str, str],
        clock: Clock,
        *,
        on_alert: Callable[[BudgetAlert], None] | None = None,
    ) -> None:
        settings = config.access
        self.enabled = settings.enabled
        self.store: AccessStore | None = None
        self.directory: Directory | None = None
        self.admin: AccessOperations | None = None
        self.invalidations = invalidations(config, environ) if self.enabled else None
        self._secrets: list[str] = [
            resolve_optional(ref, environ)
            for ref in (settings.store, config.redis.url if config.redis else "")
            if is_reference(ref)
        ]
        if self.enabled:
            self.store = key_store(config, environ)
            secret = hash_secret(config, environ)
            self._secrets.append(secret.decode(errors="replace"))
            self.directory = Directory(self.store, secret, clock, reload_s=settings.reload_s, watch_s=WATCH_S)
            self.admin = AccessOperations(
                self.store,
                secret,
                clock,
                directory=self.directory,
                announce=None if self.invalidations is None else self.invalidations.announce,
                routes=list(config.routes),
            )
        self.counters, local = _counters(config, environ)
        s = settings.sessions
        limits = config.limits
        self.quota = Quota(
            self.counters,
            clock,
            local=local,
            on_failure=limits.on_backend_failure,
            local_share=limits.local_share,
            probe_s=limits.probe_s,
            wait_s=config.redis.timeout_ms / 1000 if config.redis is not None else 0.1,
            sessions=Sessions(s.max_calls, s.max_spend_usd, s.idle_ttl_s),
            alert_shares=settings.budget_alerts,
            on_alert=on_alert,
        )
        self.backend = "redis" if local is not None else "memory"

    def secrets(self) -> list[str]:
        """Values no log line may show: the hash secret, and store or Redis URLs given by reference."""
        return list(self._secrets)

    async def start(self) -> None:
        """Open the store and load the keys; a store that is down does not stop the start-up
        (requests get 503 until the background loop has loaded them)."""
        if not self.enabled:
            log.warning(
                "ACCESS CONTROL IS OFF (access.enabled: false): anyone who can reach this gateway can use it. "
                "For local development only."
            )
        if self.store is not None and self.directory is not None:
            try:
                await self.store.open()
                await self.directory.refresh(force=True)
            except Exception as exc:  # noqa: BLE001 - the directory's loop keeps trying
                log.warning("key store unreachable at start-up (%s); retrying in the background", type(exc).__name__)
            self.directory.start()
            if self.invalidations is not None:
                self.invalidations.listen(self.directory.invalidate)
        self.quota.start()

    async def stop(self) -> None:
        await self.quota.stop()
        if self.invalidations is not None:
            await self.invalidations.close()
        if self.directory is not None:
            await self.directory.stop()
        if self.store is not None:
            try:
                await self.store.close()
            except Exception as exc:  # noqa: BLE001 - closing a dead connection may fail; nothing is lost
                log.warning("key store did not close cleanly: %s", type(exc).__name__)
        close = getattr(self.counters, "close", None)
        if close is not None:
            await close()

    @property
    def ready(self) -> bool:
        """Keys loaded (or access control off)."""
        return self.directory is None or self.directory.loaded

    def readiness(self) -> dict[str, Any]:
        """What ``/readyz`` says about access and limits."""
        quota = self.quota
        if quota.healthy:
            state = "ok"
        else:
            state = (
                "degraded: counting locally" if quota.on_failure == "open" else "degraded: refusing limited requests"
            )
        out: dict[str, Any] = {"limits": {"backend": self.backend, "state": state}}
        if self.directory is None:
            out["access"] = "off"
            out["warnings"] = ["access control is off (access.enabled: false): anyone can call this gateway"]
        else:
            out["access"] = "on" if self.directory.loaded else "keys not loaded yet"
        return out

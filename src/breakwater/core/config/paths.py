"""Relative paths in a config file are relative to the file's directory.

``breakwater keys list --config acc/gateway.yaml`` run from the parent directory must open the
key store the gateway started with that config uses, not an empty one in the current directory.
So every file path a config file holds is anchored at the file's directory once, when the file
is loaded (``server.app.load_config``); the stores, the spool, the hash secret beside a SQLite
key store and the credential readers then only ever see absolute paths.

Anchored: ``ledger.url``, ``access.store``, ``responses.store`` and ``batches.store`` (``sqlite:///relative.db``; the
hash secret file is derived from the key store's path), ``ledger.spool_path``, and every ``file:`` reference
(``server.admin_key``, ``server.tls.*``, ``access.store``, ``access.hash_secret``, ``ledger.url``, ``responses.store``, ``batches.store``, ``redis.url``,
``providers.*.api_key``, ``providers.*.credentials``, ``tracing.headers.*``, ``alerts.webhook``), ``routes.*.learned.artifact`` and
``routes.*.variants.ramp.gate.suite``, as other tools read the
relative paths of their config files (Docker Compose, for one). A value read through a
reference (``env:LEDGER_URL`` holding ``sqlite:///x.db``) did not come from the file and is used
as it is. The embedded default config has no file and keeps the current directory.

Pure: paths are joined, never looked up.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import PurePath

from breakwater.core.config.model import Config
from breakwater.core.config.routes import Route

_SQLITE = "sqlite:///"
_FILE = "file:"


def anchor_paths(config: Config, directory: PurePath) -> Config:
    """``config`` with each relative file path it holds made relative to ``directory``.

    Args:
        config: a config parsed from a file.
        directory: the file's directory, absolute (so the result does not depend on the current
            directory either).
    """

    def path(value: str) -> str:
        if value in ("", ":memory:") or PurePath(value).is_absolute():
            return value
        return str(directory / value)

    def reference(value: str) -> str:
        return _FILE + path(value.removeprefix(_FILE)) if value.startswith(_FILE) else value

    def optional(value: str | None) -> str | None:
        return None if value is None else reference(value)

    def url(value: str) -> str:
        return _SQLITE + path(value.removeprefix(_SQLITE)) if value.startswith(_SQLITE) else reference(value)

    server, access, ledger, redis = config.server, config.access, config.ledger, config.redis
    tracing, alerts = config.tracing, config.alerts
    return config.model_copy(
        update={
            "server": server.model_copy(
                update={
                    "admin_key": optional(server.admin_key),
                    "tls": None
                    if server.tls is None
                    else server.tls.model_copy(
                        update={
                            "cert": reference(server.tls.cert),
                            "key": reference(server.tls.key),
                            "key_password": optional(server.tls.key_password),
                        }
                    ),
                }
            ),
            "access": access.model_copy(
                update={"store": url(access.store), "hash_secret": optional(access.hash_secret)}
            ),
            "ledger": ledger.model_copy(update={"url": url(ledger.url), "spool_path": path(ledger.spool_path)}),
            "redis": None if redis is None else redis.model_copy(update={"url": reference(redis.url)}),
            "tracing": tracing.model_copy(
                update={"headers": {name: reference(value) for name, value in tracing.headers.items()}}
            ),
            "alerts": alerts.model_copy(update={"webhook": optional(alerts.webhook)}),
            "responses": config.responses.model_copy(
                update={"store": None if config.responses.store is None else url(config.responses.store)}
            ),
            "batches": config.batches.model_copy(
                update={"store": None if config.batches.store is None else url(config.batches.store)}
            ),
            "providers": {
                name: provider.model_copy(
                    update={"api_key": optional(provider.api_key), "credentials": optional(provider.credentials)}
                )
                for name, provider in config.providers.items()
            },
            "routes": {name: _route_paths(route, path) for name, route in config.routes.items()},
        }
    )


def _route_paths(route: Route, path: Callable[[str], str]) -> Route:
    """A route with its learned router's artifact and its canary gate's suite anchored."""
    if route.learned is not None:
        route = route.model_copy(
            update={"learned": route.learned.model_copy(update={"artifact": path(route.learned.artifact)})}
        )
    ramp = None if route.variants is None else route.variants.ramp
    if route.variants is not None and ramp is not None and ramp.gate is not None:
        gate = ramp.gate.model_copy(update={"suite": path(ramp.gate.suite)})
        ramp = ramp.model_copy(update={"gate": gate})
        route = route.model_copy(update={"variants": route.variants.model_copy(update={"ramp": ramp})})
    return route

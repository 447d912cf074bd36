"""The ``breakwater`` command: serve | mock | check-config | config | usage | slo | compare | shadow | keys |
teams | limits | audit | router | prompts | eval | replay | tokens | import | loadtest | version. Thin over the layers."""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from breakwater import __version__
from breakwater.cli import access, compare, costs, launch, prompts, replay, router, shadow, slo, tokens, usage
from breakwater.cli import config as config_cli
from breakwater.cli import eval as eval_cli
from breakwater.cli import imports as import_cli
from breakwater.cli import loadtest as loadtest_cli
from breakwater.core.config import Config, ConfigError
from breakwater.observability.logging import configure_logging


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    result: int = args.run(args)
    return result


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="breakwater", description="An LLM gateway.")
    sub = parser.add_subparsers(dest="command")

    serve = sub.add_parser("serve", help="run the gateway")
    serve.add_argument("--config", metavar="FILE", help="YAML config (default: the embedded default)")
    serve.add_argument(
        "--config-store",
        metavar="URL",
        default=os.environ.get("BREAKWATER_CONFIG_STORE") or None,
        help="run the newest configuration version stored there, and follow new ones "
        "(with --config: the file is applied when it changed since it was deployed last); "
        "default: $BREAKWATER_CONFIG_STORE",
    )
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--workers", type=int, default=1, metavar="N")
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    serve.set_defaults(run=_serve)

    mock = sub.add_parser("mock", help="run the mock provider (OpenAI, Anthropic and Gemini wire formats)")
    mock.add_argument("--host", default="127.0.0.1")
    mock.add_argument("--port", type=int, default=9000)
    mock.add_argument("--faults", metavar="FILE", help="YAML list of fault rules (see docs/mock.md)")
    mock.add_argument("--seed", type=int, default=None, help="seed for fault rates (repeatable drills)")
    mock.add_argument("--answers", metavar="FILE", help="YAML list of scripted answers (see docs/mock.md)")
    mock.set_defaults(run=_mock)

    check = sub.add_parser("check-config", help="validate a config file and report every problem")
    check.add_argument("file")
    check.set_defaults(run=_check)

    config_cli.register(sub)
    usage.register(sub)
    slo.register(sub)
    shadow.register(sub)
    compare.register(sub)
    access.register(sub)
    router.register(sub)
    prompts.register(sub)
    replay.register(sub)
    eval_cli.register(sub)
    tokens.register(sub)
    import_cli.register(sub)
    loadtest_cli.register(sub)
    costs.register(sub)

    version = sub.add_parser("version", help="print the version")
    version.set_defaults(run=_version)
    return parser


def _version(_args: argparse.Namespace) -> int:
    print(f"breakwater {__version__}")
    return 0


def _load(path: str | None) -> Config:
    from breakwater.runtime.loading import load_config
    from breakwater.runtime.wiring import check_environment

    config = load_config(path, os.environ)
    problems = check_environment(config, os.environ)
    if problems:
        raise ConfigError(path or "<embedded default>", problems)
    return config


def _check(args: argparse.Namespace) -> int:
    try:
        config = _load(args.file)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(
        f"{args.file}: OK ({len(config.providers)} providers, {len(config.deployments)} deployments, "
        f"{len(config.routes)} routes)"
    )
    from breakwater.runtime.wiring import retirements

    now = time.time()
    for retirement in retirements(config):
        warning = retirement.warning(now)
        if warning is not None:
            print(f"  WARNING: {warning}")
    from breakwater.runtime.residency import residency_warnings

    for finding in residency_warnings(config):
        print(f"  WARNING: residency: {finding}")
    return 0


def _stored(url: str, path: str | None) -> tuple[Config, int]:
    """The newest version in the store at ``url``, after deploying the file at ``path`` (if any)."""
    from breakwater.runtime.stored_config import StoredConfig, versions_store
    from breakwater.runtime.wiring import check_environment

    loaded = StoredConfig(versions_store(url, os.environ), os.environ, file=path).read_now()
    problems = check_environment(loaded.config, os.environ)
    if problems:
        raise ConfigError(f"config version {loaded.version}", problems)
    assert loaded.version is not None
    return loaded.config, loaded.version


def _serve(args: argparse.Namespace) -> int:
    try:
        if args.config_store:
            config, version = _stored(args.config_store, args.config)
        else:
            config = _load(args.config)
    except ConfigError as exc:
        print(f"refusing to start: {exc}", file=sys.stderr)
        return 1
    if args.config:
        # absolute, not resolved: the workers anchor relative paths at the same directory as
        # this process (a symlinked config, e.g. a Kubernetes ConfigMap, keeps its own directory)
        os.environ["BREAKWATER_CONFIG"] = str(Path(args.config).absolute())
    else:
        os.environ.pop("BREAKWATER_CONFIG", None)
    if args.config_store:
        os.environ["BREAKWATER_CONFIG_STORE"] = args.config_store
    else:
        os.environ.pop("BREAKWATER_CONFIG_STORE", None)
    from breakwater.runtime.tls import tls_options

    tls = tls_options(config.server.tls, os.environ)  # checked by _load / _stored: resolves
    try:
        sock = launch.bind(args.host, args.port)
    except launch.CannotListen as exc:
        print(f"breakwater: {exc}", file=sys.stderr)
        return 1
    configure_logging(args.log_level)
    source = f"stored version {version}" if args.config_store else args.config or "embedded default"
    print(
        f"Breakwater {__version__} listening on {_address(sock, https=bool(tls))} ({source}, {args.workers} worker(s))"
    )
    for name, route in config.routes.items():
        where = f"provider {route.provider}" if route.provider else ", ".join(t.deployment for t in route.deployments)
        if route.branches:
            where = "branches " + ", ".join(route.branches)
        print(f"  route {name:<24} -> {where}")
    limited = config.access.enabled or any(r.limits is not None for r in config.routes.values())
    if args.workers > 1 and config.limits.backend == "memory" and limited:
        print(
            f"  WARNING: limits.backend is memory: each of the {args.workers} workers counts limits and budgets on its own\n"
            "  (each allows the whole limit). Use limits.backend: redis to share them (docs/access.md)."
        )
    if not config.access.enabled:
        print(
            "  WARNING: access control is off (access.enabled: false): anyone who can reach this address can use\n"
            "  every route. For local development only; see docs/access.md to turn keys on."
        )
    with _metrics_dir(args.workers):
        return launch.serve(
            "breakwater.server.app:app_from_env",
            sock,
            log_level=args.log_level,
            factory=True,
            workers=args.workers,
            # after the drain delay (server/drain.py), how long in-flight requests may take to finish
            timeout_graceful_shutdown=config.server.drain_timeout_s,
            **tls,
        )


def _address(sock: socket.socket, *, https: bool = False) -> str:
    """The URL a bound socket answers on (the real port when ``--port 0`` let the kernel pick)."""
    host, port = sock.getsockname()[:2]
    scheme = "https" if https else "http"
    return f"{scheme}://[{host}]:{port}" if sock.family == socket.AF_INET6 else f"{scheme}://{host}:{port}"


@contextlib.contextmanager
def _metrics_dir(workers: int) -> Iterator[None]:
    """With several workers, a fresh ``PROMETHEUS_MULTIPROC_DIR`` they share, removed at exit.

    It must be in the environment before uvicorn spawns the workers: each imports
    prometheus-client afresh and picks memory-mapped values only if the variable is set then.
    An operator's own ``PROMETHEUS_MULTIPROC_DIR`` is used as it is and left in place.
    """
    if workers <= 1 or os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        yield
        return
    path = tempfile.mkdtemp(prefix="breakwater-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
    try:
        yield
    finally:
        os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
        shutil.rmtree(path, ignore_errors=True)


def _mock(args: argparse.Namespace) -> int:
    import yaml

    from breakwater.infra.clock import SystemRandom
    from breakwater.infra.mock.app import create_mock_app
    from breakwater.infra.mock.faults import validate_faults

    rules: list[dict[str, object]] = []
    if args.faults:
        rules = yaml.safe_load(Path(args.faults).read_text(encoding="utf-8")) or []
        problems = validate_faults(rules)
        if problems:
            print("refusing to start: " + "; ".join(problems), file=sys.stderr)
            return 1
    from breakwater.infra.mock.model import ScriptedAnswer

    answers: list[ScriptedAnswer] = []
    if args.answers:
        scripted = yaml.safe_load(Path(args.answers).read_text(encoding="utf-8")) or []
        try:
            answers = [ScriptedAnswer.parse(a) for a in scripted]
        except (ValueError, TypeError, AttributeError) as exc:
            print(f"refusing to start: {args.answers}: {exc}", file=sys.stderr)
            return 1
    try:
        sock = launch.bind(args.host, args.port)
    except launch.CannotListen as exc:
        print(f"breakwater mock: {exc}", file=sys.stderr)
        return 1
    print(f"Breakwater mock provider listening on {_address(sock)} (OpenAI, Anthropic, Gemini)")
    app = create_mock_app(rules, rng=SystemRandom(args.seed), answers=tuple(answers))
    return launch.serve(app, sock, log_level="info")

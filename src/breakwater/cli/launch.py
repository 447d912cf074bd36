"""Serving an ASGI app from the CLI: the listening socket bound first, then uvicorn on it.

The CLI binds the socket itself, before it prints "listening on ...", so that line is true when
it appears, and a port that is taken is one clear line and exit status 1 instead of a banner
followed by uvicorn's traceback. uvicorn is handed the bound socket: ``Server.run(sockets=...)``
with one worker, its ``Multiprocess`` supervisor with several (each worker process inherits the
socket and accepts on it). Either way uvicorn runs with uvloop, the httptools parser, no
access log, and the log set-up of ``observability/logging.py`` in every process.
"""

from __future__ import annotations

import errno
import signal
import socket
import sys
from types import FrameType
from typing import Any, NoReturn

from breakwater.observability.logging import logging_config

__all__ = ["CannotListen", "bind", "serve"]

#: connections the kernel queues before a worker accepts them (uvicorn's default)
BACKLOG = 2048

_REASONS = {
    errno.EADDRINUSE: "address already in use (another process has it; choose --port)",
    errno.EACCES: "permission denied (ports below 1024 need privileges; choose --port)",
    errno.EADDRNOTAVAIL: "address not available on this machine (choose --host)",
}


class CannotListen(Exception):
    """The address cannot be listened on; the message says where and why, in one line."""


def bind(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` and listening, inheritable by worker processes.

    Raises:
        CannotListen: the port is taken, privileged, or the host is not an address of this
            machine.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    where = f"[{host}]:{port}" if family == socket.AF_INET6 else f"{host}:{port}"
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        # as uvicorn does: a restarted gateway may bind while old connections sit in TIME_WAIT
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(BACKLOG)
    except OSError as exc:
        sock.close()
        raise CannotListen(f"cannot listen on {where}: {_reason(exc)}") from None
    sock.set_inheritable(True)
    return sock


def _reason(exc: OSError) -> str:
    if isinstance(exc, socket.gaierror):
        return "unknown host (choose --host)"
    return _REASONS.get(exc.errno or 0) or (exc.strerror or str(exc)).lower()


def serve(app: object, sock: socket.socket, *, log_level: str, workers: int = 1, **options: Any) -> int:
    """Run ``app`` on ``sock`` until SIGTERM or SIGINT; the exit status.

    SIGTERM ends the process with status 0: uvicorn handles it gracefully, then re-raises it
    against the handler that was installed before it started (``Server.capture_signals``), which
    would otherwise be the default one, killing the process by the signal it has just handled.

    Args:
        app: an ASGI app, or with ``factory=True`` the import string of a function making one
            (required with several workers: each imports it).
        sock: from ``bind``; uvicorn closes it at shutdown.
        log_level: the ``breakwater`` loggers' level in every process.
        workers: worker processes; more than one runs uvicorn's supervisor.
        options: more ``uvicorn.Config`` settings (``factory``, ``timeout_graceful_shutdown``).
    """
    import uvicorn
    from uvicorn.config import STARTUP_FAILURE
    from uvicorn.supervisors import Multiprocess

    log_config = logging_config(log_level)
    sys.stdout.flush()
    signal.signal(signal.SIGTERM, _exit_cleanly)
    config = uvicorn.Config(
        app,  # type: ignore[arg-type]
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_config=log_config,
        log_level=log_config["loggers"]["uvicorn"]["level"].lower(),
        workers=workers,
        **options,
    )
    if workers > 1:
        supervisor = Multiprocess(config, sockets=[sock])
        supervisor.run()
        # a worker that could not start stops the supervisor (uvicorn would start it again in vain)
        return 1 if any(w.exitcode == STARTUP_FAILURE for w in supervisor.processes) else 0
    server = uvicorn.Server(config)
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    return 0 if server.started else 1


def _exit_cleanly(signum: int, frame: FrameType | None) -> NoReturn:
    raise SystemExit(0)

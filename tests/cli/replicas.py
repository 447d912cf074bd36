"""Two ``breakwater serve`` replicas sharing a Redis and a key store, and the load that hammers
them: the harness of ``test_replicas.py`` and ``test_redis_outage.py``.

Each replica is its own OS process with one worker, its own ledger, and the same SQLite key
store, hash secret, admin key and Redis namespace as the other. Their stdout and stderr are
drained by threads into lists (a debug-level replica would otherwise block on a full pipe), so a
test can read every log line after the processes exit. Waits poll a condition against a deadline.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

import httpx2 as httpx
import redis

from tests.cli.test_cli import _free_port, _spawn, _wait_ready
from tests.polling import until

ADMIN_KEY = "adm-replicas-5e1d93b7a2c4f608"
HASH_SECRET = "replica-hash-secret-7f3a9c0e5b2d4e6f8a1c93d0"
#: USD per million tokens: a token in costs $0.001, a token out $0.002, whole nano-dollars both
INPUT_PER_MTOK = Decimal("1000")
OUTPUT_PER_MTOK = Decimal("2000")
ROUTE = "chat"
#: the start of a replica, on a loaded two-core machine (imports, tokenizers, key store)
READY_S = 60.0


@dataclass
class Replica:
    """One ``breakwater serve`` process, its base URL and the lines it wrote."""

    name: str
    proc: subprocess.Popen[str]
    url: str
    out: list[str] = field(default_factory=list)
    err: list[str] = field(default_factory=list)
    _readers: list[threading.Thread] = field(default_factory=list)

    def drain(self) -> None:
        """Read stdout and stderr into ``out`` and ``err`` from background threads."""
        for stream, lines in ((self.proc.stdout, self.out), (self.proc.stderr, self.err)):
            reader = threading.Thread(target=_read_lines, args=(stream, lines), daemon=True)
            reader.start()
            self._readers.append(reader)

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL if it has not exited within 30 s; the exit status (None: it had
        to be killed)."""
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
            status: int | None = self.proc.returncode
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=30)
            status = None
        for reader in self._readers:
            reader.join(timeout=10)
        return status


def _read_lines(stream: IO[str] | None, lines: list[str]) -> None:
    if stream is None:
        return
    for line in stream:
        lines.append(line.rstrip("\n"))


def environment() -> dict[str, str]:
    """The replicas' environment: this one without provider API keys, plus the two secrets."""
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and k != "PROMETHEUS_MULTIPROC_DIR"}
    return {**env, "BW_HASH": HASH_SECRET, "BW_ADMIN": ADMIN_KEY}


def write_config(tmp_path: Path, index: int, redis_url: str, namespace: str, **limits: Any) -> Path:
    """Replica ``index``'s config: shared key store, Redis and limits counters, its own ledger.

    ``limits`` adds to the ``limits`` section (``probe_s``); ``redis_timeout_ms`` is how long a
    request waits for Redis. It is 1 s here, not the default 100 ms: with 48 clients on two cores
    a replica's event loop alone can hold an answer that long, and such a request is admitted on
    local counters (by design: a slow Redis must not hold requests), which would blur the exact
    cross-replica counts these tests measure. An outage is a refused connection, noticed at once
    whatever the timeout.
    """
    timeout_ms = limits.pop("redis_timeout_ms", 1000)
    config = {
        "server": {"admin_key": "env:BW_ADMIN"},
        "access": {"store": f"sqlite:///{tmp_path}/keys.db", "hash_secret": "env:BW_HASH"},
        "redis": {"url": redis_url, "namespace": namespace, "timeout_ms": timeout_ms},
        "limits": {"backend": "redis", **limits},
        "ledger": {"url": f"sqlite:///{tmp_path}/ledger-{index}.db", "spool_path": f"{tmp_path}/ledger-{index}.spool"},
        "providers": {"m": {"type": "mock", "wire": "openai"}},
        "deployments": {
            "d": {
                "provider": "m",
                "model": "mock-gpt",
                "price": {"input_per_mtok": str(INPUT_PER_MTOK), "output_per_mtok": str(OUTPUT_PER_MTOK)},
            }
        },
        "routes": {ROUTE: {"deployments": ["d"], "retry": {"max_attempts": 1}}},
    }
    path = tmp_path / f"replica-{index}.yaml"
    path.write_text(json.dumps(config))  # JSON is YAML
    return path


@contextmanager
def replicas(
    tmp_path: Path, redis_url: str, namespace: str, *, log_level: str = "info", **limits: Any
) -> Iterator[list[Replica]]:
    """Two replicas, ready; both stopped afterwards, and checked to have exited 0."""
    started: list[Replica] = []
    try:
        for index in (0, 1):
            config = write_config(tmp_path, index, redis_url, namespace, **dict(limits))
            port = _free_port()
            proc = _spawn(
                "serve", "--config", str(config), "--port", str(port), "--log-level", log_level, env=environment()
            )
            replica = Replica("AB"[index], proc, f"http://127.0.0.1:{port}")
            started.append(replica)
        for replica in started:
            _wait_ready(replica.url, replica.proc, limit_s=READY_S)
            replica.drain()
        yield started
    finally:
        statuses = [r.stop() for r in started]
    for replica, status in zip(started, statuses, strict=True):
        assert status == 0, f"replica {replica.name} exited with {status}: {replica.err[-20:]}"


def admin(replica: Replica) -> httpx.Client:
    return httpx.Client(base_url=replica.url, timeout=30, headers={"authorization": f"Bearer {ADMIN_KEY}"})


def create_key(replica: Replica, **spec: Any) -> dict[str, Any]:
    """A key made through ``replica``'s admin API (the response holds the key itself)."""
    with admin(replica) as client:
        r = client.post("/admin/keys", json=spec)
    assert r.status_code == 201, r.text
    made: dict[str, Any] = r.json()
    return made


def status_with(replica: Replica, key: str) -> int:
    """What ``GET /v1/models`` answers with ``key``: it authenticates without counting a request."""
    return httpx.get(f"{replica.url}/v1/models", headers={"authorization": f"Bearer {key}"}, timeout=10).status_code


def wait_accepted(replica: Replica, key: str, limit_s: float = 20.0) -> None:
    """Poll ``replica`` until it knows ``key`` (pub/sub makes it near-instant)."""
    until(lambda: status_with(replica, key) == 200, limit_s, f"replica {replica.name} accepts the new key")


def metric(text: str, name: str) -> float:
    """A sample's value in Prometheus text (the first sample of ``name``, any labels)."""
    found = re.search(rf"^{name}(?:_total)?(?:{{[^}}]*}})? (\S+)$", text, re.MULTILINE)
    assert found, f"{name} missing from /metrics"
    return float(found.group(1))


def gauge(replica: Replica, name: str) -> float:
    return metric(httpx.get(f"{replica.url}/metrics", timeout=10).text, name)


def cost(prompt_tokens: int, completion_tokens: int) -> Decimal:
    """What a request costs at the deployment's price."""
    return (prompt_tokens * INPUT_PER_MTOK + completion_tokens * OUTPUT_PER_MTOK) / Decimal(1_000_000)


# --- load ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Outcome:
    """One request of the load: where it went, when, and what came back."""

    replica: int
    started: float
    latency_s: float
    status: int
    body: dict[str, Any]


@dataclass
class Load:
    """Clients sending one chat body with one key, each alternating between the replicas."""

    replicas: list[Replica]
    key: str
    body: dict[str, Any]
    concurrency: int = 48
    #: stop once this many requests were sent (None: no bound)
    attempts: int | None = None
    outcomes: list[Outcome] = field(default_factory=list)
    stopped: asyncio.Event = field(default_factory=asyncio.Event)
    _sent: int = 0

    def stop(self) -> None:
        self.stopped.set()

    async def run(self, until_s: float = 40.0) -> list[Outcome]:
        """Send until ``stop``, ``attempts`` requests or ``until_s`` seconds, whichever comes first."""
        deadline = time.monotonic() + until_s
        limits = httpx.Limits(max_connections=2 * self.concurrency, max_keepalive_connections=2 * self.concurrency)
        headers = {"authorization": f"Bearer {self.key}"}
        async with httpx.AsyncClient(timeout=30, limits=limits, headers=headers) as client:
            await asyncio.gather(*(self._client(client, n, deadline) for n in range(self.concurrency)))
        return self.outcomes

    async def _client(self, client: httpx.AsyncClient, n: int, deadline: float) -> None:
        turn = n
        while not self.stopped.is_set() and time.monotonic() < deadline:
            if self.attempts is not None:
                if self._sent >= self.attempts:
                    return
                self._sent += 1
            index = turn % len(self.replicas)
            turn += 1
            started = time.monotonic()
            r = await client.post(f"{self.replicas[index].url}/v1/chat/completions", json=self.body)
            latency = time.monotonic() - started
            try:
                body = r.json()
            except ValueError:
                body = {"text": r.text}
            self.outcomes.append(Outcome(index, started, latency, r.status_code, body))


def tally(outcomes: list[Outcome]) -> tuple[list[Outcome], list[Outcome], list[Outcome]]:
    """(200s, 429s, anything else)."""
    ok = [o for o in outcomes if o.status == 200]
    refused = [o for o in outcomes if o.status == 429]
    other = [o for o in outcomes if o.status not in (200, 429)]
    for o in other[:5]:
        print(f"unexpected status {o.status} from replica {'AB'[o.replica]}: {o.body}")
    return ok, refused, other


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def scrub_redis(url: str, namespace: str) -> None:
    """Delete every key of ``namespace`` from a Redis shared with other work (never a FLUSH)."""
    client = redis.Redis.from_url(url, socket_timeout=5)
    try:
        names = list(client.scan_iter(match=f"{namespace}*", count=1000))
        if names:
            client.delete(*names)
    finally:
        client.close()

"""Breakwater side by side with LiteLLM and a bare pass-through proxy, in one run.

    python bench/run.py                 # the full comparison (about 15 minutes)
    python bench/run.py --quick         # one repeat, shorter points (a few minutes)
    python bench/run.py --smoke         # Breakwater only, a few seconds, no wrk (run by the tests)
    python bench/run.py --soak 600      # 10-minute fixed-rate soak of Breakwater, RSS over time

Everything runs on loopback. The system under test is pinned to core 0; the upstream (Breakwater's
own mock provider) and the load generator (wrk) share core 1. Systems are measured in
alternation, each point repeated, and the spread reported, because these machines are noisy.
Results go to ``bench/results/latest.json`` and ``latest.md`` (``--update-docs`` also rewrites
the table in docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import load  # bench/load.py: the Python load client for smoke, TTFT and soak
import report  # bench/report.py: JSON -> Markdown

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
LITELLM_VERSION = "1.106.2"
LITELLM_VENV = BENCH / ".venv-litellm"
LITELLM_KEY = "sk-bench-litellm-master"
MODEL = "bench"
PROMPT = [{"role": "user", "content": "Say hello in one short sentence."}]
GATEWAY_CPU, HELPER_CPU = "0", "1"
#: pid -> the temporary file holding that process's stderr
LOGS: dict[int, Any] = {}


#: stands in the prompt for a number wrk makes unique per request (``wrk(..., unique=True)``)
UNIQUE = "__N__"


def body(model: str, stream: bool, unique: bool = False) -> str:
    """The benchmark's request; ``unique``: its prompt carries ``UNIQUE``, which wrk replaces by a
    counter, so no two requests are alike (a cache only ever misses)."""
    prompt = [{"role": "user", "content": f"{PROMPT[0]['content']} {UNIQUE}"}] if unique else PROMPT
    data: dict[str, Any] = {"model": model, "messages": prompt}
    if stream:
        data["stream"] = True
    return json.dumps(data, separators=(",", ":"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- processes -------------------------------------------------------------------------------------


def _rss_of(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def rss_bytes(pid: int) -> int:
    """RSS of ``pid`` and all its descendants (uvicorn workers are children of a supervisor)."""
    return sum(_rss_of(p) for p in tree(pid))


@dataclass
class Running:
    name: str
    proc: subprocess.Popen[bytes]
    url: str  # chat completions URL
    model: str
    startup_s: float | None = None
    #: the API key it is called with: a Breakwater virtual key, LiteLLM's master key
    token: str = load.ANY_TOKEN


def tree(pid: int) -> list[int]:
    """``pid`` and its descendants."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        todo.extend(children.get(p, []))
    return found


def freeze(pid: int, frozen: bool) -> None:
    """SIGSTOP / SIGCONT a process tree: only the system under test may use the gateway core,
    so an idle system's background work (LiteLLM has plenty) cannot skew another's figures."""
    for p in tree(pid):
        try:
            os.kill(p, signal.SIGSTOP if frozen else signal.SIGCONT)
        except ProcessLookupError:
            continue


def spawn(cmd: list[str], cpus: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    # pin only where there are cores to pin to (a 1-core machine runs everything unpinned)
    can_pin = shutil.which("taskset") is not None and (os.cpu_count() or 1) > 1
    pinned = ["taskset", "-c", cpus, *cmd] if can_pin else cmd
    # stderr goes to an unbounded temporary file: a pipe nobody reads fills up and then blocks
    # the process on its next log line, which looks exactly like a hung server
    log = tempfile.TemporaryFile()  # noqa: SIM115 - kept open as long as the process runs
    proc = subprocess.Popen(pinned, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL, stderr=log)
    LOGS[proc.pid] = log
    return proc


def log_tail(proc: subprocess.Popen[bytes]) -> str:
    log = LOGS.get(proc.pid)
    if log is None:
        return ""
    log.seek(0)
    return log.read().decode(errors="replace")[-3000:]


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def first_success(
    url: str,
    model: str,
    proc: subprocess.Popen[bytes],
    started: float,
    token: str = load.ANY_TOKEN,
    limit_s: float = 120,
) -> float:
    """Seconds from ``started`` until one chat completion through ``url`` succeeds."""
    while time.monotonic() - started < limit_s:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode}: {log_tail(proc)}")
        if load.post_ok(url, body(model, False), token):
            return time.monotonic() - started
        time.sleep(0.01)  # polling for readiness with a deadline
    raise RuntimeError(f"{url} did not answer within {limit_s} s")


# --- the systems -------------------------------------------------------------------------------------


def breakwater_config(
    mock: str,
    tmp: Path,
    ledger: bool = True,
    access: bool = True,
    cache: bool = False,
    router: bool = False,
    shadow: bool = False,
    drift: bool = False,
    prompts: bool = False,
    variants: bool = False,
    refusals: bool = True,
    trim: bool = False,
) -> Path:
    """The benchmark's gateway config: the ledger (SQLite in ``tmp``) and access control are on, as
    they are by default, and requests carry a virtual key (``breakwater_key``) with no limits.
    ``cache``: the route caches every answer (``mode: exact``, ``qualify: all``; off by default).
    ``router``: a second route, ``bench-routed``, chooses between branches by rules (its default:
    the ``bench`` route), so the router stage is on the path of every request.
    ``shadow``: another route, ``bench-shadowed``, mirrors its traffic to ``bench``, so the shadow
    stage is on the path of every request (acting on none sent to ``bench``).
    ``drift``: the ``bench`` route has a drift watch sampling a tiny share (0.01%), so the drift
    stage draws a random number for every request and grades almost none.
    ``prompts``: a prompt registry (one prompt) and a route ``bench-prompted`` (the ``bench``
    deployment) pinning it, so the prompts stage is on the path of every request: not acting on
    ``bench``, rendering a system message before the request's on ``bench-prompted``.
    ``variants``: a route ``bench-variants`` whose arms (99.9/0.1, sticky by user) both name
    ``bench``, so the variants stage is built. ``refusals``: the refusal detector (on by default,
    as in a config). ``trim``: the ``bench`` route has a history trimmer whose budget (8,000
    tokens) its requests never reach, so the trim stage bounds every request and trims none."""
    path = tmp / (
        f"breakwater{'' if ledger else '-noledger'}{'' if access else '-noaccess'}{'-cache' if cache else ''}"
        f"{'-router' if router else ''}{'-shadow' if shadow else ''}{'-drift' if drift else ''}{'-prompts' if prompts else ''}"
        f"{'-variants' if variants else ''}{'' if refusals else '-norefusals'}{'-trim' if trim else ''}.yaml"
    )
    ledger_yaml = (
        f"ledger: {{url: 'sqlite:///{tmp}/ledger.db', spool_path: '{tmp}/ledger.spool'}}\n"
        if ledger
        else "ledger: {enabled: false}\n"
    )
    access_yaml = f"access: {{store: 'sqlite:///{tmp}/keys.db'}}\n" if access else "access: {enabled: false}\n"
    path.write_text(
        ledger_yaml + access_yaml + "providers:\n"
        f"  upstream: {{type: openai, base_url: '{mock}/v1', api_key: 'env:BENCH_UPSTREAM_KEY'}}\n"
        "deployments:\n"
        "  bench: {provider: upstream, model: bench-model}\n"
        "routes:\n"
        "  bench: {deployments: [bench]"
        + (", cache: {mode: exact, qualify: all}" if cache else "")
        + (", drift: {share: 0.0001, asserts: [{type: icontains, value: hello}]}" if drift else "")
        + (", trim: {max_input_tokens: 8000}" if trim else "")
        + "}\n"
        + (
            "  bench-routed:\n"
            "    branches: {main: {route: bench}, other: {route: bench}}\n"
            "    rules: [{if: {tools: true}, then: other}, {if: {last_user_contains: [prove, derive]}, then: other},\n"
            "            {if: {prompt_tokens_over: 100000}, then: other}]\n"
            "    default: main\n"
            if router
            else ""
        )
        + ("  bench-shadowed: {deployments: [bench], shadow: {route: bench}}\n" if shadow else "")
        + ("  bench-prompted: {deployments: [bench], prompt: bench-system@1}\n" if prompts else "")
        + (
            "  bench-variants:\n"
            "    variants: {sticky: user, arms: {control: {route: bench, weight: 99.9}, canary: {route: bench, weight: 0.1}}}\n"
            if variants
            else ""
        )
        + (
            "prompts:\n"
            "  bench-system:\n"
            "    versions:\n"
            "      1:\n"
            "        messages: [{role: system, content: 'You answer for {{ product }}, briefly.'}]\n"
            "        variables: {product: {default: Breakwater}}\n"
            if prompts
            else ""
        )
        + ("cache: {max_bytes: 16777216}\n" if cache else "")
        + ("" if refusals else "refusals: {enabled: false}\n")
    )
    return path


def litellm_config(mock: str, tmp: Path) -> Path:
    path = tmp / "litellm.yaml"
    path.write_text(
        "model_list:\n"
        "  - model_name: bench\n"
        "    litellm_params:\n"
        "      model: openai/bench-model\n"
        f"      api_base: {mock}/v1\n"
        "      api_key: sk-bench-upstream\n"
        "litellm_settings:\n"
        "  telemetry: false\n"
    )
    return path


def ensure_litellm() -> Path | None:
    """LiteLLM's proxy in its own virtualenv, pinned; None (with a message) if it cannot be installed."""
    exe = LITELLM_VENV / "bin" / "litellm"
    if exe.exists():
        return exe
    print(f"installing litellm[proxy]=={LITELLM_VERSION} into {LITELLM_VENV} (once)...", flush=True)
    try:
        subprocess.run([sys.executable, "-m", "venv", str(LITELLM_VENV)], check=True)
        subprocess.run(
            [str(LITELLM_VENV / "bin" / "pip"), "install", "-q", f"litellm[proxy]=={LITELLM_VERSION}"],
            check=True,
        )
    except subprocess.CalledProcessError as exc:
        print(f"LiteLLM could not be installed ({exc}); it is left out of this run", flush=True)
        return None
    return exe


#: (workers, cpus) -> (process, chat URL, the API key to call it with)
Starter = Callable[[int, str], tuple[subprocess.Popen[bytes], str, str]]


def breakwater_key(config: Path) -> str:
    """A virtual key made with ``breakwater keys create`` in the config's key store."""
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "breakwater",
            "keys",
            "create",
            "--config",
            str(config),
            "--name",
            "bench",
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    key: str = json.loads(out)["key"]
    return key


def breakwater_starter(mock: str, tmp: Path, **options: bool) -> Starter:
    """Breakwater on ``breakwater_config(mock, tmp, **options)``."""
    bw_config = breakwater_config(mock, tmp, **options)
    key = breakwater_key(bw_config) if options.get("access", True) else load.ANY_TOKEN

    def breakwater(workers: int, cpus: str) -> tuple[subprocess.Popen[bytes], str, str]:
        port = free_port()
        cmd = [sys.executable, "-m", "breakwater", "serve", "--config", str(bw_config), "--port", str(port)]
        proc = spawn([*cmd, "--workers", str(workers)], cpus, {"BENCH_UPSTREAM_KEY": "sk-bench-upstream"})
        return proc, f"http://127.0.0.1:{port}/v1/chat/completions", key

    return breakwater


def starters(mock: str, tmp: Path, with_litellm: bool) -> dict[str, tuple[Starter, str]]:
    """name -> (start(workers, cpus) -> (process, chat URL), model name)."""
    py = sys.executable
    breakwater = breakwater_starter(mock, tmp)

    def bare(workers: int, cpus: str) -> tuple[subprocess.Popen[bytes], str, str]:
        port = free_port()
        cmd = [py, str(BENCH / "bare_proxy.py"), "--port", str(port), "--upstream", mock, "--workers", str(workers)]
        return spawn(cmd, cpus), f"http://127.0.0.1:{port}/v1/chat/completions", load.ANY_TOKEN

    systems: dict[str, tuple[Starter, str]] = {"breakwater": (breakwater, MODEL), "bare-proxy": (bare, "bench-model")}
    exe = ensure_litellm() if with_litellm else None
    if exe is not None:
        lt_config = litellm_config(mock, tmp)

        def litellm(workers: int, cpus: str) -> tuple[subprocess.Popen[bytes], str, str]:
            port = free_port()
            cmd = [str(exe), "--config", str(lt_config), "--host", "127.0.0.1", "--port", str(port)]
            # no network beyond loopback: the bundled price map instead of a download. Calls are
            # authenticated on both sides: Breakwater checks a virtual key, LiteLLM its master key
            # (its virtual keys need a PostgreSQL database, which would only slow it further)
            env = {"LITELLM_LOG": "ERROR", "LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_MASTER_KEY": LITELLM_KEY}
            proc = spawn([*cmd, "--num_workers", str(workers)], cpus, env)
            return proc, f"http://127.0.0.1:{port}/v1/chat/completions", LITELLM_KEY

        systems["litellm"] = (litellm, MODEL)
    return systems


@contextmanager
def running(name: str, start: Starter, model: str, workers: int = 1, cpus: str = GATEWAY_CPU) -> Iterator[Running]:
    t0 = time.monotonic()
    proc, url, token = start(workers, cpus)
    try:
        startup = first_success(url, model, proc, t0, token)
        yield Running(name, proc, url, model, startup, token)
    finally:
        stop(proc)


# --- measuring ---------------------------------------------------------------------------------------


def wrk(
    url: str, payload: str, connections: int, seconds: float, token: str = load.ANY_TOKEN, unique: bool = False
) -> dict[str, float]:
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s"]
    if (os.cpu_count() or 1) > 1:
        cmd = ["taskset", "-c", HELPER_CPU, *cmd]
    out = subprocess.run(
        [*cmd, "-s", str(BENCH / "wrk_report.lua"), url],
        env={
            **os.environ,
            "BENCH_BODY": payload,
            "BENCH_TOKEN": token,
            **({"BENCH_UNIQUE": UNIQUE, "BENCH_RUN": uuid.uuid4().hex} if unique else {}),
        },
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    line = next(ln for ln in out.splitlines() if ln.startswith("BENCH_JSON "))
    raw = json.loads(line[len("BENCH_JSON ") :])
    seconds_run = raw["duration_us"] / 1e6
    return {
        "rps": raw["requests"] / seconds_run,
        "p50_ms": raw["p50_us"] / 1000,
        "p90_ms": raw["p90_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "errors": raw["errors"] + raw["non2xx"],
        "requests": raw["requests"],
    }


class PeakRSS:
    """Samples a process tree's RSS in the background while load runs.

    The tree is listed once, before the load, and each sample reads only those processes'
    status files: walking all of /proc every sample cost enough CPU to show in the p99.
    """

    def __init__(self, pid: int) -> None:
        self.pids, self.peak, self._stop = tree(pid), 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            self.peak = max(self.peak, sum(_rss_of(p) for p in self.pids))

    def __enter__(self) -> PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def compare(args: argparse.Namespace, tmp: Path, mock: str) -> dict[str, Any]:
    """The side-by-side run: throughput/latency points, TTFT, RSS, start-up, 1 -> 2 workers."""
    systems = starters(mock, tmp, with_litellm=not args.no_litellm)
    direct = Running("upstream", subprocess.Popen(["true"]), f"{mock}/v1/chat/completions", "bench-model", 0.0)
    result: dict[str, Any] = {"points": [], "rss": {}, "startup_s": {}, "ttft": {}, "scaling": {}}
    concurrencies = [1, 10, 50]
    with ExitStack() as stack:
        live = {"upstream": direct}
        for name, (start, model) in systems.items():
            live[name] = stack.enter_context(running(name, start, model))
            result["startup_s"][name] = live[name].startup_s
            result["rss"][name] = {"idle_mb": rss_bytes(live[name].proc.pid) / 2**20, "peak_mb": 0.0}
        order = list(live)

        def only(name: str) -> Running:
            for other in order[1:]:
                freeze(live[other].proc.pid, other != name)
            return live[name]

        for name in order:  # warm-up: JIT-free Python still has caches, pools and lazy imports
            wrk(only(name).url, body(live[name].model, False), 10, args.warmup, live[name].token)
        for rep in range(args.repeats):
            for conc in concurrencies:
                for mode in ("plain", "stream"):
                    rotated = order[rep % len(order) :] + order[: rep % len(order)]
                    for name in rotated:
                        sys_ = only(name)
                        with PeakRSS(sys_.proc.pid) as peak:
                            point = wrk(sys_.url, body(sys_.model, mode == "stream"), conc, args.duration, sys_.token)
                        if point["requests"] == 0:
                            raise RuntimeError(f"{name} answered nothing in {args.duration} s: {log_tail(sys_.proc)}")
                        if name != "upstream":
                            result["rss"][name]["peak_mb"] = max(result["rss"][name]["peak_mb"], peak.peak / 2**20)
                        point.update(system=name, mode=mode, concurrency=conc, rep=rep)
                        result["points"].append(point)
                        print(f"  {name:<11} {mode:<6} c={conc:<3} rep {rep}: {point['rps']:8.0f} req/s  "
                              f"p50 {point['p50_ms']:.2f} ms  p99 {point['p99_ms']:.2f} ms  errors {point['errors']}", flush=True)  # fmt: skip
        for name in order:
            samples = load.ttft(only(name).url, body(live[name].model, True), args.ttft_samples, live[name].token)
            result["ttft"][name] = {"p50_ms": statistics.median(samples) * 1000, "p90_ms": _pct(samples, 90) * 1000}
        for name in order[1:]:
            freeze(live[name].proc.pid, False)  # so they can shut down
    for name, (start, model) in systems.items():
        result["scaling"][name] = {}
        for workers, cpus in ((1, GATEWAY_CPU), (2, "0,1")):
            with running(name, start, model, workers, cpus) as sys_:
                wrk(sys_.url, body(model, False), 50, args.warmup, sys_.token)
                runs = [
                    wrk(sys_.url, body(model, False), 50, args.duration, sys_.token)["rps"] for _ in range(args.repeats)
                ]
            result["scaling"][name][str(workers)] = runs
    return result


def _pct(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * pct / 100))]


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


@contextmanager
def mock_server(cpus: str = HELPER_CPU) -> Iterator[str]:
    port = free_port()
    proc = spawn([sys.executable, "-m", "breakwater", "mock", "--port", str(port)], cpus)
    url = f"http://127.0.0.1:{port}"
    try:
        first_success(f"{url}/v1/chat/completions", "bench-model", proc, time.monotonic())
        yield url
    finally:
        stop(proc)


def feature_cost(args: argparse.Namespace, tmp: Path, mock: str, feature: str) -> dict[str, Any]:
    """What one feature (``ledger``, ``access``, ``cache``, ``router``, ``shadow``, ``drift`` or ``trim``) costs: Breakwater with it
    on and off, measured in interleaved runs of each, for throughput at c=50 and latency at c=1
    (plain requests).

    For ``cache`` every request is unique (``body(unique=True)``): the cost of a miss, with its
    lookup and its store, against no cache at all. For ``router`` the "on" requests go to a route
    that chooses its branch by three rules (none holds: the default branch, the ``bench`` route)
    and the "off" ones straight to ``bench`` on a gateway without branching routes. For ``shadow``
    both send to ``bench``; the "on" gateway has another route with a shadow (the stage configured,
    not acting). For ``drift`` both send to ``bench``, which has a drift watch of share 0.01% on the
    "on" gateway (the stage sampling, grading almost nothing). For ``trim`` both send to ``bench``,
    which has a history trimmer on the "on" gateway (the stage configured, not acting).
    """
    on, off = feature, f"no-{feature}"
    unique = feature == "cache"
    payload = body(MODEL, False, unique)
    # the router: the same request to the branching route (rules evaluated, the default chosen)
    payload_on = body("bench-routed", False) if feature == "router" else payload
    rps: dict[str, list[float]] = {on: [], off: []}
    latency: dict[str, list[dict[str, float]]] = {on: [], off: []}
    with ExitStack() as stack:
        live = {
            on: stack.enter_context(running(on, breakwater_starter(mock, tmp, **{feature: True}), MODEL)),
            off: stack.enter_context(running(off, breakwater_starter(mock, tmp, **{feature: False}), MODEL)),
        }

        def only(name: str) -> Running:
            freeze(live[off if name == on else on].proc.pid, True)
            freeze(live[name].proc.pid, False)
            return live[name]

        for name in live:
            sys_ = only(name)
            wrk(sys_.url, payload_on if name == on else payload, 50, args.warmup, sys_.token, unique)
        for rep in range(args.repeats * 2):
            for name in (on, off) if rep % 2 == 0 else (off, on):
                sys_ = only(name)
                sent = payload_on if name == on else payload
                rps[name].append(wrk(sys_.url, sent, 50, args.duration, sys_.token, unique)["rps"])
                single = wrk(sys_.url, sent, 1, args.duration, sys_.token, unique)
                latency[name].append({"p50_ms": single["p50_ms"], "p99_ms": single["p99_ms"]})
                print(f"  {name:<10} rep {rep}: {rps[name][-1]:8.0f} req/s at c=50, c=1 p50 {single['p50_ms']:.3f} "
                      f"p99 {single['p99_ms']:.3f} ms", flush=True)  # fmt: skip
        for sys_ in live.values():
            freeze(sys_.proc.pid, False)
    with_f, without = statistics.median(rps[on]), statistics.median(rps[off])

    def median(name: str, key: str) -> float:
        return statistics.median(p[key] for p in latency[name])

    return {
        f"{feature}_cost": {
            "rps": rps,
            "latency_c1": latency,
            "median_with": with_f,
            "median_without": without,
            "cost": 1 - with_f / without,
            "added_p50_ms": median(on, "p50_ms") - median(off, "p50_ms"),
            "added_p99_ms": median(on, "p99_ms") - median(off, "p99_ms"),
        }
    }


def cache_hits(args: argparse.Namespace, tmp: Path, mock: str) -> dict[str, Any]:
    """Plain req/s at c=50 of Breakwater answering every request from its cache (the same request
    over and over, ``mode: exact``) against the bare proxy's, in interleaved runs."""
    rps: dict[str, list[float]] = {"cache-hit": [], "bare-proxy": []}
    with ExitStack() as stack:
        bare_start = starters(mock, tmp, with_litellm=False)["bare-proxy"][0]
        live = {
            "cache-hit": stack.enter_context(running("cache-hit", breakwater_starter(mock, tmp, cache=True), MODEL)),
            "bare-proxy": stack.enter_context(running("bare-proxy", bare_start, "bench-model")),
        }

        def only(name: str) -> Running:
            for other in live:
                freeze(live[other].proc.pid, other != name)
            return live[name]

        for name in live:
            sys_ = only(name)
            wrk(sys_.url, body(sys_.model, False), 50, args.warmup, sys_.token)
        for rep in range(args.repeats * 2):
            for name in list(live) if rep % 2 == 0 else list(reversed(live)):
                sys_ = only(name)
                rps[name].append(wrk(sys_.url, body(sys_.model, False), 50, args.duration, sys_.token)["rps"])
                print(f"  {name:<10} rep {rep}: {rps[name][-1]:8.0f} req/s at c=50", flush=True)
        for sys_ in live.values():
            freeze(sys_.proc.pid, False)
    hit, bare = statistics.median(rps["cache-hit"]), statistics.median(rps["bare-proxy"])
    return {"rps": rps, "median_hit": hit, "median_bare": bare, "ratio": hit / bare}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="Breakwater only, a few seconds, Python load client")
    parser.add_argument("--quick", action="store_true", help="one repeat of shorter points")
    parser.add_argument("--soak", type=float, metavar="SECONDS", help="fixed-rate soak of Breakwater instead")
    parser.add_argument("--soak-rate", type=float, default=300.0, help="requests per second during the soak")
    parser.add_argument("--no-litellm", action="store_true", help="leave LiteLLM out")
    parser.add_argument("--ledger-cost", action="store_true", help="throughput with the ledger on vs off")
    parser.add_argument("--access-cost", action="store_true", help="throughput with access control (keys) on vs off")
    parser.add_argument(
        "--cache-cost",
        action="store_true",
        help="throughput with the exact cache on (every request a miss) vs off, and cache hits vs the bare proxy",
    )
    parser.add_argument(
        "--router-cost",
        action="store_true",
        help="throughput of a request to a route choosing its branch by rules vs the same request to the branch's route",
    )
    parser.add_argument(
        "--shadow-cost",
        action="store_true",
        help="throughput with a shadow configured on another route (the stage on the path, not acting) vs none",
    )
    parser.add_argument(
        "--drift-cost",
        action="store_true",
        help="throughput with a drift watch of a tiny share (0.01%%) on the route vs none",
    )
    parser.add_argument(
        "--trim-cost",
        action="store_true",
        help="throughput with a history trimmer on the route (configured, never over its budget) vs none",
    )
    parser.add_argument("--out", type=Path, default=BENCH / "results")
    parser.add_argument("--update-docs", action="store_true", help="rewrite the table in docs/benchmarks.md")
    args = parser.parse_args(argv)
    args.repeats, args.duration, args.warmup, args.ttft_samples = (1, 3, 2, 100) if args.quick else (3, 6, 3, 300)
    args.out.mkdir(parents=True, exist_ok=True)
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        # this script's own work (RSS sampling, TTFT client) stays off the gateway's core
        os.sched_setaffinity(0, {int(HELPER_CPU)})
    meta = {"command": "python bench/run.py " + " ".join(argv if argv is not None else sys.argv[1:]), **machine()}

    with tempfile.TemporaryDirectory() as tmpdir, mock_server() as mock:
        tmp = Path(tmpdir)
        if args.smoke or args.soak:
            start, model = starters(mock, tmp, with_litellm=False)["breakwater"]
            with running("breakwater", start, model) as bw:
                if args.smoke:
                    result = {
                        "smoke": load.smoke(bw.url, body(model, False), body(model, True), seconds=3.0, token=bw.token)
                    }
                    result["smoke"]["startup_s"] = bw.startup_s
                    result["smoke"]["rss_mb"] = rss_bytes(bw.proc.pid) / 2**20
                else:
                    result = {
                        "soak": load.soak(
                            bw.url, body(model, False), args.soak, args.soak_rate, rss_bytes, bw.proc.pid, bw.token
                        )
                    }
            name = "smoke" if args.smoke else "soak"
        elif any(
            (
                args.ledger_cost,
                args.access_cost,
                args.cache_cost,
                args.router_cost,
                args.shadow_cost,
                args.drift_cost,
                args.trim_cost,
            )
        ):
            chosen = {
                "ledger": args.ledger_cost,
                "access": args.access_cost,
                "cache": args.cache_cost,
                "router": args.router_cost,
                "shadow": args.shadow_cost,
                "drift": args.drift_cost,
                "trim": args.trim_cost,
            }
            feature = next(name for name, on in chosen.items() if on)
            result = feature_cost(args, tmp, mock, feature)
            if feature == "cache":
                result["cache_hits"] = hits = cache_hits(args, tmp, mock)
                print(f"cache hits {hits['median_hit']:.0f} req/s, bare proxy {hits['median_bare']:.0f} req/s: "
                      f"{hits['ratio'] * 100:.0f}% of the bare proxy")  # fmt: skip
            result["meta"] = meta
            (args.out / f"{feature}-cost.json").write_text(json.dumps(result, indent=2))
            cost = result[f"{feature}_cost"]
            print(f"{feature} on {cost['median_with']:.0f} req/s, off {cost['median_without']:.0f} req/s: "
                  f"costs {cost['cost'] * 100:.1f}% of throughput; at c=1 adds {cost['added_p50_ms']:.3f} ms p50, "
                  f"{cost['added_p99_ms']:.3f} ms p99")  # fmt: skip
            return 0
        else:
            if not shutil.which("wrk"):
                print("wrk is required for the comparison: apt-get install wrk", file=sys.stderr)
                return 2
            result = compare(args, tmp, mock)
            name = "latest"
    result["meta"] = meta
    (args.out / f"{name}.json").write_text(json.dumps(result, indent=2))
    markdown = report.markdown(result)
    (args.out / f"{name}.md").write_text(markdown)
    print(markdown)
    if args.update_docs and name in ("latest", "soak"):
        report.update_docs(ROOT / "docs" / "benchmarks.md", markdown, "bench" if name == "latest" else "soak")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

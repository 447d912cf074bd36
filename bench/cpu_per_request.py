"""CPU time per request, by thread: where a gateway's core goes, against the bare proxy's.

    python bench/cpu_per_request.py [--seconds 6] [--repeats 2] [--json]
    python bench/cpu_per_request.py --cache [--repeats 6]     # what a cache miss costs
    python bench/cpu_per_request.py --prompts [--repeats 6]   # the prompts stage, idle and rendering
    python bench/cpu_per_request.py --variants [--repeats 6]  # the variants stage and the refusal detector
    python bench/cpu_per_request.py --drift [--repeats 6]     # a drift watch sampling 0.01%, against none

Throughput at saturation is one over the CPU a request costs, so this is the number behind the
ratio to the bare proxy. Each system runs pinned to core 0 (the mock and wrk on core 1, as in
``bench/run.py``) while wrk drives 50 connections; the kernel's per-thread counters
(``/proc/PID/task/TID/stat``: user and system time) are read before and after, and divided by
the requests answered. The event loop's thread is the process's main thread; "other threads"
are the ledger's SQLite threads and the default thread pool.

Systems: the bare proxy; Breakwater as benchmarked (access control and the SQLite ledger on);
with the ledger off; with access off; with both off (nothing optional left on the path).

``--cache``: instead, plain requests that are all different (every one a cache miss) to
Breakwater with both off, without the cache and with the exact cache on (``qualify: all``, a
16 MiB memory store kept full), so the difference is what a miss costs: its key, lookup and store.

``--prompts``: the plain request to Breakwater with both off, without prompts; with a prompt
registry configured but not acting on the request (its route pins none, it names none); and to a
route pinning the prompt (a system message rendered before the request's: the stage acting).
``--variants``: plain and streamed requests to Breakwater with both off and the refusal detector
off; with the detector on (its default); with a route with variants configured but the request
on another route (the stage present, not acting; detector off); and the request to that route
(the stage assigning it, 99.9/0.1 sticky by user; detector off).
``--drift``: the plain request to Breakwater with both off, without and with a drift watch of
share 0.01% on its route (the stage drawing for every request, grading almost none).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run  # bench/run.py: the systems, wrk and the process helpers


def thread_ticks(pid: int) -> dict[int, tuple[int, int]]:
    """tid -> (user, system) clock ticks spent so far, for every thread of ``pid``."""
    ticks: dict[int, tuple[int, int]] = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            fields = Path(f"/proc/{pid}/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the thread ended between the listing and the read
        ticks[int(tid)] = (int(fields[11]), int(fields[12]))
    return ticks


def per_request(
    pid: int, before: dict[int, tuple[int, int]], after: dict[int, tuple[int, int]], n: int
) -> dict[str, float]:
    """Microseconds per request: the main thread's user and system time, and the other threads'."""
    us = 1e6 / os.sysconf("SC_CLK_TCK") / n

    def spent(tid: int) -> tuple[int, int]:
        user, system = after[tid]
        user0, system0 = before.get(tid, (0, 0))
        return user - user0, system - system0

    main_user, main_system = spent(pid)
    others = sum(sum(spent(tid)) for tid in after if tid != pid)
    return {
        "main_user_us": main_user * us,
        "main_system_us": main_system * us,
        "other_threads_us": others * us,
        "total_us": (main_user + main_system + others) * us,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=6, help="seconds per measured point")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object")
    parser.add_argument("--cache", action="store_true", help="cache misses against no cache (plain requests)")
    parser.add_argument("--prompts", action="store_true", help="the prompts stage idle and acting, against none")
    parser.add_argument("--variants", action="store_true", help="the variants stage and the refusal detector")
    parser.add_argument("--drift", action="store_true", help="a drift watch sampling 0.01%% of requests, against none")
    args = parser.parse_args(argv)
    if (os.cpu_count() or 1) < 2 or not Path("/proc/self/task").is_dir():
        print("needs Linux and two cores (the system under test is pinned to core 0)", file=sys.stderr)
        return 2
    os.sched_setaffinity(0, {int(run.HELPER_CPU)})
    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmpdir, run.mock_server() as mock, ExitStack() as stack:
        tmp = Path(tmpdir)
        starters: dict[str, tuple[Callable[..., Any], str]] = {
            "bare-proxy": (run.starters(mock, tmp, with_litellm=False)["bare-proxy"][0], "bench-model"),
            "breakwater": (run.breakwater_starter(mock, tmp), run.MODEL),
            "breakwater, ledger off": (run.breakwater_starter(mock, tmp, ledger=False), run.MODEL),
            "breakwater, access off": (run.breakwater_starter(mock, tmp, access=False), run.MODEL),
            "breakwater, both off": (run.breakwater_starter(mock, tmp, ledger=False, access=False), run.MODEL),
        }
        modes = ("plain", "stream")
        if args.cache:
            off = {"ledger": False, "access": False}
            starters = {
                "both off, no cache": (run.breakwater_starter(mock, tmp, **off), run.MODEL),
                "both off, cache (misses)": (run.breakwater_starter(mock, tmp, cache=True, **off), run.MODEL),
            }
            modes = ("plain",)
        if args.prompts:
            off = {"ledger": False, "access": False}
            with_prompts = run.breakwater_starter(mock, tmp, prompts=True, **off)
            starters = {
                "both off, no prompts": (run.breakwater_starter(mock, tmp, **off), run.MODEL),
                "prompts, not acting": (with_prompts, run.MODEL),
                "prompts, pinned route": (with_prompts, "bench-prompted"),
            }
            modes = ("plain",)
        if args.variants:
            off = {"ledger": False, "access": False}
            starters = {
                "no variants, refusals off": (run.breakwater_starter(mock, tmp, refusals=False, **off), run.MODEL),
                "refusal detector on": (run.breakwater_starter(mock, tmp, **off), run.MODEL),
                "variants, not acting": (
                    run.breakwater_starter(mock, tmp, variants=True, refusals=False, **off),
                    run.MODEL,
                ),
                "variants, acting": (
                    run.breakwater_starter(mock, tmp, variants=True, refusals=False, **off),
                    "bench-variants",
                ),
            }
        if args.drift:
            off = {"ledger": False, "access": False}
            starters = {
                "both off, no drift": (run.breakwater_starter(mock, tmp, **off), run.MODEL),
                "drift watch, 0.01%": (run.breakwater_starter(mock, tmp, drift=True, **off), run.MODEL),
            }
            modes = ("plain",)
        live = {name: stack.enter_context(run.running(name, start, model)) for name, (start, model) in starters.items()}
        for name in live:
            run.freeze(live[name].proc.pid, True)
        for rep in range(args.repeats):
            for mode in modes:
                names = list(live) if rep % 2 == 0 else list(reversed(live))
                for name in names:
                    sys_ = live[name]
                    run.freeze(sys_.proc.pid, False)
                    payload = run.body(sys_.model, mode == "stream", unique=args.cache)
                    run.wrk(sys_.url, payload, 50, 1, sys_.token, args.cache)  # warm
                    before, started = thread_ticks(sys_.proc.pid), time.monotonic()
                    point = run.wrk(sys_.url, payload, 50, args.seconds, sys_.token, args.cache)
                    after = thread_ticks(sys_.proc.pid)
                    run.freeze(sys_.proc.pid, True)
                    costs = per_request(sys_.proc.pid, before, after, max(int(point["requests"]), 1))
                    costs["rps"] = point["rps"]
                    costs["wall_s"] = time.monotonic() - started
                    result.setdefault(mode, {}).setdefault(name, []).append(costs)
                    if not args.json:
                        print(f"  {mode:<6} {name:<24} {point['rps']:7.0f} req/s  {costs['total_us']:6.1f} us/request",
                              flush=True)  # fmt: skip
        for sys_ in live.values():
            run.freeze(sys_.proc.pid, False)
    summary = {
        mode: {name: {k: statistics.median(r[k] for r in runs) for k in runs[0]} for name, runs in systems.items()}
        for mode, systems in result.items()
    }
    if args.json:
        print(json.dumps({"summary": summary, "runs": result}))
        return 0
    for mode, systems in summary.items():
        print(f"\n{mode}, c=50 (medians of {args.repeats}): microseconds of CPU per request")
        print("| system | req/s | event loop thread, user | its system (kernel) | other threads | total |")
        print("| --- | --- | --- | --- | --- | --- |")
        for name, m in systems.items():
            print(f"| {name} | {m['rps']:.0f} | {m['main_user_us']:.0f} | {m['main_system_us']:.0f} | "
                  f"{m['other_threads_us']:.0f} | {m['total_us']:.0f} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

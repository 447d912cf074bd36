"""The upstream HTTP client compared: the bare proxy with each client, on the same benchmark.

    python bench/upstream_clients.py [--rounds 2] [--seconds 8] [--clients aiohttp,httpx,pyreqwest]

The bare proxy (``bench/bare_proxy.py --client X``) is pinned to core 0, the mock provider and
wrk to core 1, as in ``bench/run.py``. Each round measures every client in turn (the order
rotated), plain and streamed at c=50 and plain at c=1; the report gives every run, so the
spread is visible. A client that is not installed is skipped with a message.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run  # bench/run.py: the processes, the mock and wrk

MODULES = {"aiohttp": "aiohttp", "httpx": "httpx", "pyreqwest": "pyreqwest"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--clients", default="aiohttp,httpx,pyreqwest")
    args = parser.parse_args(argv)
    clients = []
    for name in args.clients.split(","):
        if importlib.util.find_spec(MODULES[name]) is None:
            print(f"{name} is not installed: left out (pip install {name})", flush=True)
        else:
            clients.append(name)
    results: dict[str, dict[str, list[float]]] = {c: {"plain": [], "stream": [], "c1_p50": []} for c in clients}
    with run.mock_server() as mock:
        for rnd in range(args.rounds):
            for name in clients[rnd % len(clients) :] + clients[: rnd % len(clients)]:
                port = run.free_port()
                cmd = [sys.executable, str(run.BENCH / "bare_proxy.py"), "--port", str(port), "--upstream", mock]
                proc = run.spawn([*cmd, "--client", name], run.GATEWAY_CPU)
                url = f"http://127.0.0.1:{port}/v1/chat/completions"
                try:
                    run.first_success(url, "bench-model", proc, time.monotonic())
                    run.wrk(url, run.body("bench-model", False), 10, 2)  # warm-up
                    for mode in ("plain", "stream"):
                        point = run.wrk(url, run.body("bench-model", mode == "stream"), 50, args.seconds)
                        if point["errors"]:
                            raise RuntimeError(f"{name} {mode}: {point['errors']} errors: {run.log_tail(proc)}")
                        results[name][mode].append(point["rps"])
                    results[name]["c1_p50"].append(
                        run.wrk(url, run.body("bench-model", False), 1, args.seconds)["p50_ms"]
                    )
                finally:
                    run.stop(proc)
                r = results[name]
                print(f"  round {rnd} {name:<10} plain {r['plain'][-1]:7.0f} req/s  stream {r['stream'][-1]:7.0f} "
                      f"req/s  c=1 p50 {r['c1_p50'][-1]:.3f} ms", flush=True)  # fmt: skip
    print("\n| client | plain req/s at c=50 | streamed req/s at c=50 | p50 at c=1 (ms) |")
    print("| --- | --- | --- | --- |")
    for name, r in results.items():
        runs = {k: ", ".join(f"{v:.0f}" if k != "c1_p50" else f"{v:.2f}" for v in vs) for k, vs in r.items()}
        median = {k: statistics.median(vs) for k, vs in r.items()}
        print(f"| {name} | {runs['plain']} (median {median['plain']:.0f}) | {runs['stream']} (median "
              f"{median['stream']:.0f}) | {runs['c1_p50']} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Benchmark results (the JSON bench/run.py writes) as Markdown tables, targets checked."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any


def _spread(values: list[float], fmt: str = "{:.0f}") -> str:
    if not values:
        return "-"
    mid = statistics.median(values)
    if len(values) == 1:
        return fmt.format(mid)
    return f"{fmt.format(mid)} ({fmt.format(min(values))}-{fmt.format(max(values))})"


def _points(result: dict[str, Any], system: str, mode: str, conc: int) -> list[dict[str, Any]]:
    return [p for p in result["points"] if p["system"] == system and p["mode"] == mode and p["concurrency"] == conc]


def _median(result: dict[str, Any], system: str, mode: str, conc: int, key: str) -> float | None:
    values = [p[key] for p in _points(result, system, mode, conc)]
    return statistics.median(values) if values else None


def markdown(result: dict[str, Any]) -> str:
    meta = result.get("meta", {})
    lines = [
        f"Command: `{meta.get('command', '')}`, {meta.get('date', '')}, "
        f"{meta.get('cpu', '')} ({meta.get('cores', '?')} cores), Python {meta.get('python', '')}.",
        "",
    ]
    if "smoke" in result:
        s = result["smoke"]
        lines += ["| mode | ok | failed | req/s | p50 ms |", "| --- | --- | --- | --- | --- |"]
        for mode in ("plain", "stream"):
            m = s[mode]
            lines.append(f"| {mode} | {m['ok']} | {m['failed']} | {m['rps']:.0f} | {m['p50_ms'] or 0:.2f} |")
        lines.append(f"\nStart-up to first proxied response: {s['startup_s']:.2f} s; RSS {s['rss_mb']:.0f} MB.")
        return "\n".join(lines) + "\n"
    if "soak" in result:
        s = result["soak"]
        lines += [
            f"Soak: {s['seconds']:.0f} s at {s['rate']:.0f} req/s: {s['ok']} ok, {s['failed']} failed; "
            f"RSS spread after warm-up {s['drift_after_warmup'] * 100:.1f}%.",
            "",
            "| t (s) | RSS (MB) |",
            "| --- | --- |",
        ]
        rows = s["rss"]
        shown = [x for i, x in enumerate(rows) if int(x["t_s"]) % 60 < 10 or i == len(rows) - 1]  # one a minute
        lines += [f"| {x['t_s']:.0f} | {x['rss_mb']:.1f} |" for x in shown]
        return "\n".join(lines) + "\n"

    systems = list(dict.fromkeys(p["system"] for p in result["points"]))
    lines += [
        "Requests per second: median of the repeats (min-max). Latency in ms, median of the repeats.",
        "",
        "| system | mode | conc | req/s | p50 | p90 | p99 | errors |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for system in systems:
        for mode in ("plain", "stream"):
            for conc in (1, 10, 50):
                pts = _points(result, system, mode, conc)
                if not pts:
                    continue
                lat = {k: statistics.median(p[k] for p in pts) for k in ("p50_ms", "p90_ms", "p99_ms")}
                lines.append(
                    f"| {system} | {mode} | {conc} | {_spread([p['rps'] for p in pts])} | {lat['p50_ms']:.2f} | "
                    f"{lat['p90_ms']:.2f} | {lat['p99_ms']:.2f} | {sum(p['errors'] for p in pts)} |"
                )
    gateways = [s for s in systems if s != "upstream"]
    lines += ["", "| system | added p50 / p99 at c=1 (ms) | added TTFT p50 (ms) | RSS idle / peak (MB) | start-up (s) | 2 workers / 1 |",
              "| --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for s in gateways:
        added = _added(result, s)
        ttft = result["ttft"].get(s, {}).get("p50_ms", 0) - result["ttft"].get("upstream", {}).get("p50_ms", 0)
        rss = result["rss"].get(s, {})
        lines.append(
            f"| {s} | {added[0]:.2f} / {added[1]:.2f} | {ttft:.2f} | {rss.get('idle_mb', 0):.0f} / "
            f"{rss.get('peak_mb', 0):.0f} | {result['startup_s'].get(s, 0):.2f} | {_scaling(result, s)} |"
        )
    lines += ["", *targets(result)]
    return "\n".join(lines) + "\n"


def _added(result: dict[str, Any], system: str) -> tuple[float, float]:
    p50 = (_median(result, system, "plain", 1, "p50_ms") or 0) - (
        _median(result, "upstream", "plain", 1, "p50_ms") or 0
    )
    p99 = (_median(result, system, "plain", 1, "p99_ms") or 0) - (
        _median(result, "upstream", "plain", 1, "p99_ms") or 0
    )
    return p50, p99


def _scaling_ratio(result: dict[str, Any], system: str) -> float | None:
    runs = result.get("scaling", {}).get(system, {})
    if "1" not in runs or "2" not in runs:
        return None
    return statistics.median(runs["2"]) / statistics.median(runs["1"])


def _scaling(result: dict[str, Any], system: str) -> str:
    ratio = _scaling_ratio(result, system)
    return "-" if ratio is None else f"{ratio:.2f}x"


def targets(result: dict[str, Any]) -> list[str]:
    """The targets for Breakwater (issue #3's, tightened by issue #15), each with the measured figure and met / missed."""
    bw = "breakwater"
    rps = _median(result, bw, "plain", 50, "rps") or 0
    srps = _median(result, bw, "stream", 50, "rps") or 0
    lite = _median(result, "litellm", "plain", 50, "rps")
    bare = _median(result, "bare-proxy", "plain", 50, "rps")
    sbare = _median(result, "bare-proxy", "stream", 50, "rps")
    added = _added(result, bw)
    ttft = result["ttft"].get(bw, {}).get("p50_ms", 0) - result["ttft"].get("upstream", {}).get("p50_ms", 0)
    rss = result["rss"].get(bw, {})
    ratio = _scaling_ratio(result, bw)
    rows = [
        ("plain req/s vs LiteLLM (c=50)", f"{rps / lite:.1f}x" if lite else "LiteLLM not measured", ">= 25x",
         rps / lite >= 25 if lite else None),
        ("plain req/s vs bare proxy (c=50)", f"{rps / bare * 100:.0f}%" if bare else "-", ">= 70%",
         bare is not None and rps / bare >= 0.7),
        ("streamed req/s vs bare proxy (c=50)", f"{srps / sbare * 100:.0f}%" if sbare else "-", ">= 60%",
         sbare is not None and srps / sbare >= 0.6),
        ("added latency c=1, p50 / p99", f"{added[0]:.2f} / {added[1]:.2f} ms", "<= 0.4 / 1.5 ms",
         added[0] <= 0.4 and added[1] <= 1.5),
        ("added TTFT p50, streamed", f"{ttft:.2f} ms", "<= 1 ms", ttft <= 1.0),
        ("RSS idle / under load", f"{rss.get('idle_mb', 0):.0f} / {rss.get('peak_mb', 0):.0f} MB", "<= 80 / 120 MB",
         rss.get("idle_mb", 1e9) <= 80 and rss.get("peak_mb", 1e9) <= 120),
        ("start-up to first proxied response", f"{result['startup_s'].get(bw, 0):.2f} s", "<= 1.0 s",
         result["startup_s"].get(bw, 99) <= 1.0),
        ("2 workers vs 1", f"{ratio:.2f}x" if ratio else "-", ">= 1.7x", ratio is not None and ratio >= 1.7),
    ]  # fmt: skip
    out = ["| target (Breakwater) | measured | target | |", "| --- | --- | --- | --- |"]
    verdict = {True: "met", False: "**missed**", None: "not measured"}
    out += [f"| {name} | {got} | {want} | {verdict[ok]} |" for name, got, want, ok in rows]
    return out


def update_docs(path: Path, table: str, section: str = "bench") -> None:
    """Replace what stands between ``<!-- section:start -->`` and ``<!-- section:end -->`` in ``path``."""
    start, end = f"<!-- {section}:start -->", f"<!-- {section}:end -->"
    text = path.read_text()
    head, _, rest = text.partition(start)
    _, _, tail = rest.partition(end)
    path.write_text(f"{head}{start}\n{table}{end}{tail}")

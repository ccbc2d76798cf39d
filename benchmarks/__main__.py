"""wsfake benchmarks: wsfake against loopback servers and in-memory alternatives, in one run.

    python -m benchmarks                  full run (medians of 7), writes benchmarks/RESULTS.md
    python -m benchmarks --quick          smaller workloads, 3 repetitions (well under a minute)
    python -m benchmarks --quick --check  CI smoke: every result is checked, no speed is judged
    python -m benchmarks --json out.json  also write the figures as JSON

Scenarios: (a) websockets -> wsfake -> ASGI echo app, (b) websockets -> wsfake -> handler,
(c) websockets -> uvicorn (websockets-sansio) over 127.0.0.1, (d) websockets -> websockets
server over 127.0.0.1, (e) Starlette TestClient, (f) httpx-ws ASGIWebSocketTransport,
(g) the floor: bytes across wsfake's pipe with no framing.
Workloads: W1 connect + 16-byte echo + close (conn/s); W2 2,000 64-byte echo round trips
(rt/s); W3 20,000 x 64-byte server messages (msg/s); W3b 200 x 1 MiB binary (MiB/s); W4 200
concurrent connections x 20 round trips (rt/s) and heap per open connection; W5 10,000
connect/close cycles (time, heap growth, tasks left).

Repetitions run in rounds: every round runs every scenario once, so drift of a shared
machine affects all scenarios alike. The first round is a discarded warm-up.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from . import workloads as w
from .scenarios import SCENARIOS, Scenario

FULL = {"W1": 500, "W2": 2000, "W3": 20000, "W3b": 200, "W4": (200, 20), "W5": 10000, "heap": 200}
QUICK = {"W1": 50, "W2": 300, "W3": 3000, "W3b": 20, "W4": (50, 5), "W5": 500, "heap": 50}
RATIOS = [("a", "c"), ("a", "e"), ("a", "f"), ("b", "d"), ("a", "g")]
TARGETS = [
    ("a", "c", "W1", 3.0),
    ("a", "c", "W2", 2.5),
    ("a", "c", "W3", 1.5),
    ("a", "c", "W4", 2.0),
    *[("a", alt, wl, 3.0) for alt in ("e", "f") for wl in ("W1", "W2", "W3", "W4")],
    ("b", "d", "W1", 3.0),
    ("b", "d", "W2", 2.0),
]
WORKLOADS = ("W1", "W2", "W3", "W3b", "W4")


async def _round_async(scenario: Scenario, sizes: dict[str, Any], extras: bool) -> dict[str, dict[str, float]]:
    assert scenario.setup is not None
    out: dict[str, dict[str, float]] = {}
    framed = scenario.key != "g"
    async with scenario.setup() as connect:
        for name in scenario.workloads:
            if name == "W1":
                out[name] = await w.w1(connect, sizes["W1"])
            elif name == "W2":
                out[name] = await w.w2(connect, sizes["W2"], framed=framed)
            elif name == "W3":
                out[name] = await w.w3(connect, sizes["W3"], framed=framed)
            elif name == "W3b":
                out[name] = await w.w3(connect, sizes["W3b"], size=2**20, binary=True)
            elif name == "W4":
                out[name] = await w.w4(connect, *sizes["W4"])
                if extras:
                    out["heap"] = await w.heap_per_connection(connect, sizes["heap"])
            elif name == "W5" and extras and scenario.key in ("a", "b"):
                out[name] = await w.w5(connect, sizes["W5"])
    return out


def _round_sync(scenario: Scenario, sizes: dict[str, Any]) -> dict[str, dict[str, float]]:
    assert scenario.sync_setup is not None
    with scenario.sync_setup() as client:
        return {
            "W1": w.w1_sync(client, sizes["W1"]),
            "W2": w.w2_sync(client, sizes["W2"]),
            "W3": w.w3_sync(client, sizes["W3"]),
        }


def run(sizes: dict[str, Any], repeat: int, selected: list[Scenario]) -> dict[str, dict[str, list[dict[str, float]]]]:
    samples: dict[str, dict[str, list[dict[str, float]]]] = {s.key: {} for s in selected}
    for round_index in range(repeat + 1):
        for scenario in selected:
            extras = round_index == repeat  # heap and W5 once, in the last round
            if scenario.setup is not None:
                figures = asyncio.run(_round_async(scenario, sizes, extras))
            else:
                figures = _round_sync(scenario, sizes)
            if round_index == 0:
                continue  # warm-up
            for workload, values in figures.items():
                samples[scenario.key].setdefault(workload, []).append(values)
        print(f"  round {round_index}/{repeat} done", file=sys.stderr)
    return samples


def summarize(samples: dict[str, dict[str, list[dict[str, float]]]]) -> dict[str, dict[str, dict[str, Any]]]:
    summary: dict[str, dict[str, dict[str, Any]]] = {}
    for key, per_workload in samples.items():
        summary[key] = {}
        for workload, runs in per_workload.items():
            unit = next(iter(runs[0]))
            values = [r[unit] for r in runs]
            entry: dict[str, Any] = {
                "unit": unit,
                "median": statistics.median(values),
                "min": min(values),
                "max": max(values),
                "n": len(values),
            }
            entry.update({k: v for k, v in runs[-1].items() if k != unit})
            summary[key][workload] = entry
    return summary


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:,.1f}"


def render(summary: dict[str, dict[str, dict[str, Any]]], header: str) -> str:
    labels = {s.key: s.label for s in SCENARIOS}
    lines = [header, "", "## Absolute figures (median, min-max)", ""]
    lines.append("| scenario | " + " | ".join(WORKLOADS) + " | heap KiB/conn |")
    lines.append("|---|" + "---|" * (len(WORKLOADS) + 1))
    for key, figures in summary.items():
        cells = []
        for workload in WORKLOADS:
            f = figures.get(workload)
            cells.append("—" if f is None else f"{_fmt(f['median'])} {f['unit']} ({_fmt(f['min'])}-{_fmt(f['max'])})")
        heap = figures.get("heap")
        cells.append("—" if heap is None else f"{heap['median']:.1f}")
        lines.append(f"| ({key}) {labels[key]} | " + " | ".join(cells) + " |")
    lines += ["", "## wsfake's ratio to each alternative (same run)", ""]
    lines.append("| ratio | " + " | ".join(WORKLOADS) + " | heap |")
    lines.append("|---|" + "---|" * (len(WORKLOADS) + 1))
    for ours, theirs in RATIOS:
        if ours not in summary or theirs not in summary:
            continue
        cells = []
        for workload in WORKLOADS:
            a, b = summary[ours].get(workload), summary[theirs].get(workload)
            cells.append("—" if a is None or b is None else f"{a['median'] / b['median']:.2f}x")
        ha, hb = summary[ours].get("heap"), summary[theirs].get("heap")
        cells.append("—" if ha is None or hb is None else f"{ha['median'] / hb['median']:.2f}x")
        lines.append(f"| ({ours})/({theirs}) | " + " | ".join(cells) + " |")
    for key in ("a", "b"):
        w5 = summary.get(key, {}).get("W5")
        if w5:
            lines.append("")
            lines.append(
                f"W5 ({key}): connect/close cycles took {w5['median']:.1f} s, "
                f"heap growth {w5['heap growth MiB']:.2f} MiB, tasks left {int(w5['tasks left'])}"
            )
    lines += ["", "## Targets", "", "| target | measured | |", "|---|---|---|"]
    for ours, theirs, workload, goal in TARGETS:
        a, b = summary.get(ours, {}).get(workload), summary.get(theirs, {}).get(workload)
        if a is None or b is None:
            continue
        ratio = a["median"] / b["median"]
        lines.append(
            f"| ({ours})/({theirs}) {workload} >= {goal}x | {ratio:.2f}x | {'met' if ratio >= goal else 'missed'} |"
        )
    ha, hc = summary.get("a", {}).get("heap"), summary.get("c", {}).get("heap")
    if ha and hc:
        met = ha["median"] <= hc["median"]
        lines.append(
            f"| heap/conn (a) <= (c) | {ha['median']:.1f} vs {hc['median']:.1f} KiB | {'met' if met else 'missed'} |"
        )
    for key in ("a", "b"):
        w5 = summary.get(key, {}).get("W5")
        if w5:
            ok = w5["heap growth MiB"] < 5 and w5["tasks left"] == 0
            measured = f"{w5['heap growth MiB']:.2f} MiB, {int(w5['tasks left'])} tasks"
            lines.append(f"| W5 ({key}) growth < 5 MiB, no task left | {measured} | {'met' if ok else 'missed'} |")
    return "\n".join(lines) + "\n"


def _versions() -> str:
    names = ["wsfake", "websockets", "wsproto", "anyio", "uvicorn", "starlette", "httpx-ws"]
    found = []
    for name in names:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            found.append(f"{name} (not installed)")
    return ", ".join(found)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller workloads and 3 repetitions")
    parser.add_argument("--check", action="store_true", help="only verify results (counts, contents); judge no speed")
    parser.add_argument("--json", type=Path, help="write the figures as JSON to this path")
    parser.add_argument("--scenarios", default="abcdefg", help="which scenarios to run (letters), default all")
    parser.add_argument("--repeat", type=int, help="timed repetitions (default 7, or 3 with --quick)")
    args = parser.parse_args()
    sizes = QUICK if args.quick or args.check else FULL
    repeat = args.repeat or (1 if args.check else 3 if args.quick else 7)
    selected = [s for s in SCENARIOS if s.key in args.scenarios]
    started = time.perf_counter()
    try:
        samples = run(sizes, repeat, selected)
    except w.CheckFailed as exc:
        print(f"benchmark check failed: {exc}", file=sys.stderr)
        return 1
    summary = summarize(samples)
    header = (
        f"# Benchmark results\n\n`python -m benchmarks{' --quick' if args.quick else ''}` on "
        f"{time.strftime('%Y-%m-%d')}: {platform.machine()}, {os.cpu_count()} CPUs, {sys.platform}, "
        f"Python {platform.python_version()}; {_versions()}. Medians of {repeat} rounds after a warm-up round "
        f"({time.perf_counter() - started:.0f} s in all)."
    )
    text = render(summary, header)
    if args.check:
        print(f"benchmark check passed: {sum(len(v) for v in summary.values())} results verified")
        return 0
    print(text)
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "sizes": sizes, "repeat": repeat}, indent=1))
    if not args.quick:
        Path(__file__).with_name("RESULTS.md").write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

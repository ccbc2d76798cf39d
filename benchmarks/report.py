"""From samples to figures: medians, ratios, targets, and the markdown and JSON that show them.

A ratio is wsfake's median over the alternative's median: for rates higher means
wsfake is faster, for heap lower means wsfake uses less. "per round" gives the
min-max of the ratio computed within each round (both setups ran minutes apart at
most). The CPU column is process CPU time per operation (client, server and every
thread of the process); its ratio is the alternative's over wsfake's, so higher
also means wsfake is cheaper.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass
from pathlib import Path

from .plan import OTHER_LABELS, OTHER_ORDER, S1, S2, S3, SECTIONS, WORKLOAD_NAMES, Row, Target
from .workloads import Sample

Samples = dict[str, dict[str, list[Sample]]]


@dataclass(frozen=True)
class Stats:
    unit: str
    median: float
    low: float
    high: float
    cpu_us: float | None

    @classmethod
    def of(cls, samples: list[Sample]) -> Stats:
        values = [s.value for s in samples]
        cpu = [s.cpu_us for s in samples if s.cpu_us is not None]
        return cls(
            samples[0].unit,
            statistics.median(values),
            min(values),
            max(values),
            statistics.median(cpu) if cpu else None,
        )


@dataclass(frozen=True)
class Compared:
    row: Row
    wsfake: Stats
    other: Stats
    ratio: float
    ratio_low: float
    ratio_high: float
    cpu_ratio: float | None


def compare(rows: list[Row], samples: Samples) -> list[Compared]:
    """The rows whose two setups were both measured."""
    found = []
    for row in rows:
        ours, theirs = samples.get(row.wsfake, {}).get(row.workload), samples.get(row.other, {}).get(row.workload)
        if not ours or not theirs:
            continue
        a, b = Stats.of(ours), Stats.of(theirs)
        per_round = [x.value / y.value for x, y in zip(ours, theirs, strict=True)]
        cpu = b.cpu_us / a.cpu_us if a.cpu_us and b.cpu_us else None
        found.append(Compared(row, a, b, a.median / b.median, min(per_round), max(per_round), cpu))
    return found


def _num(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def _ratio(value: float) -> str:
    return f"{value:.0f}x" if value >= 100 else f"{value:.2f}x"


def _figure(stats: Stats) -> str:
    return f"{_num(stats.median)} {stats.unit} ({_num(stats.low)}-{_num(stats.high)})"


def _cpu(c: Compared) -> str:
    if c.wsfake.cpu_us is None or c.other.cpu_us is None or c.cpu_ratio is None:
        return "—"
    return f"{_num(c.wsfake.cpu_us)} / {_num(c.other.cpu_us)} ({_ratio(c.cpu_ratio)})"


def section_tables(compared: list[Compared]) -> list[str]:
    lines: list[str] = []
    for section in SECTIONS:
        mine = [c for c in compared if c.row.section == section]
        if not mine:
            continue
        lines += [f"## {section}", ""]
        lines.append("| setup | workload | wsfake | alternative | ratio (per round) | CPU µs/op wsfake / alt. |")
        lines.append("|---|---|---|---|---|---|")
        for c in mine:
            lines.append(
                f"| {c.row.label} | {WORKLOAD_NAMES[c.row.workload]} | {_figure(c.wsfake)} | {_figure(c.other)} | "
                f"**{_ratio(c.ratio)}** ({_ratio(c.ratio_low)}-{_ratio(c.ratio_high)}) | {_cpu(c)} |"
            )
        lines.append("")
    return lines


def judged(targets: list[Target], compared: list[Compared]) -> list[tuple[Target, Compared]]:
    found = []
    for target in targets:
        for c in compared:
            if (c.row.section, c.row.label, c.row.workload) == (target.section, target.label, target.workload):
                found.append((target, c))
    return found


def targets_table(targets: list[Target], compared: list[Compared]) -> list[str]:
    lines = ["## Targets", "", "| target | ratio (per round) | |", "|---|---|---|"]
    for target, c in judged(targets, compared):
        lines.append(
            f"| {c.row.label}, {c.row.workload} {target.describe()} | {_ratio(c.ratio)} "
            f"({_ratio(c.ratio_low)}-{_ratio(c.ratio_high)}) | {'met' if target.met(c.ratio) else 'missed'} |"
        )
    return [*lines, ""]


def results_markdown(header: list[str], compared: list[Compared], targets: list[Target], reading: str) -> str:
    lines = ["# Benchmark results", "", *header, ""]
    lines += section_tables(compared)
    lines += targets_table(targets, compared)
    if reading:
        lines += [reading.strip(), ""]
    return "\n".join(lines)


def readme_table(compared: list[Compared]) -> str:
    """The compact table for README.md: W1 and W2 ratios per client, then the asyncio client's other figures."""
    by_key = {(c.row.section, c.row.label, c.row.workload): c for c in compared}
    lines = [
        "| wsfake vs the same client over 127.0.0.1 (higher is faster) | W1 connect + echo + close | "
        "W2 echo round trips |",
        "|---|---|---|",
    ]

    entries = [
        ("websockets asyncio → uvicorn (ASGI)", S1, "compression=None"),
        ("websockets asyncio → websockets.serve (handler)", S2, "websockets asyncio"),
        *[(f"{OTHER_LABELS[key]} → uvicorn", S3, OTHER_LABELS[key]) for key in OTHER_ORDER],
    ]
    for title, section, label in entries:
        w1, w2 = by_key.get((section, label, "W1")), by_key.get((section, label, "W2"))
        if w1 and w2:
            lines.append(f"| {title} | {_ratio(w1.ratio)} | {_ratio(w2.ratio)} |")
    extra = []
    w0 = by_key.get((S1, "websockets asyncio", "W0"))
    if w0:
        extra.append(f"a per-test cycle (server start with lifespan, connect, echo, stop) {_ratio(w0.ratio)}")
    for label, name in (("compression=None", ""), ("permessage-deflate", " with permessage-deflate")):
        w3, w4 = by_key.get((S1, label, "W3")), by_key.get((S1, label, "W4"))
        if w3 and w4:
            extra.append(f"server stream{name} {_ratio(w3.ratio)}, 200 concurrent connections{name} {_ratio(w4.ratio)}")
    heap = by_key.get((S1, "compression=None", "heap"))
    if heap:
        extra.append(
            f"heap per open connection {_num(heap.wsfake.median)} KiB vs uvicorn's {_num(heap.other.median)} KiB"
        )
    text = "\n".join(lines) + "\n"
    if extra:
        text += "\nwebsockets asyncio client vs uvicorn: " + "; ".join(extra) + ".\n"
    return text


def samples_json(samples: Samples) -> dict[str, dict[str, list[dict[str, object]]]]:
    return {key: {name: [asdict(s) for s in runs] for name, runs in per.items()} for key, per in samples.items()}


def reading_text() -> str:
    """The hand-written "Reading these figures" section, kept next to this module."""
    path = Path(__file__).with_name("reading.md")
    return path.read_text() if path.exists() else ""

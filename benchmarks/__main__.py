"""wsfake benchmarks: wsfake against the real servers it replaces, in one run.

    python -m benchmarks                  full run (7 timed rounds), writes benchmarks/RESULTS.md
                                          and benchmarks/README_TABLE.md
    python -m benchmarks --quick          smaller workloads, 3 timed rounds, writes nothing
    python -m benchmarks --check          tiny sizes, 1 round: verifies every setup works, judges no speed
    python -m benchmarks --json out.json  also write every raw sample as JSON

Every round runs every setup once (odd rounds in reverse order, so that each
pair of compared setups alternates which runs first); the first round is a
discarded warm-up. Figures are medians over the timed rounds, with min-max.
Exit code 0 on success, 1 when a workload's result was wrong.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from importlib import metadata
from pathlib import Path

from . import plan, report
from .report import Samples
from .workloads import CheckFailed

HERE = Path(__file__).parent
VERSIONED = (
    "wsfake",
    "websockets",
    "wsproto",
    "uvicorn",
    "aiohttp",
    "websocket-client",
    "httpx",
    "httpx-ws",
    "trio",
    "trio-websocket",
    "starlette",
    "anyio",
)


def run_rounds(setups: list[plan.Setup], rounds: int, warm_up: bool) -> Samples:
    samples: Samples = {s.key: {} for s in setups}
    started = time.perf_counter()
    for index in range(rounds + warm_up):
        order = setups if index % 2 == 0 else setups[::-1]
        for setup in order:
            try:
                results = setup.run()
            except BaseException as exc:
                if sys.version_info >= (3, 11):
                    exc.add_note(f"in benchmark setup {setup.key!r}")
                raise
            if warm_up and index == 0:
                continue
            for workload, sample in results.items():
                samples[setup.key].setdefault(workload, []).append(sample)
        kind = "warm-up round" if warm_up and index == 0 else f"round {index + (not warm_up)}/{rounds}"
        print(f"  {kind} done ({time.perf_counter() - started:.0f} s)", file=sys.stderr)
    return samples


def _versions() -> str:
    found = []
    for name in VERSIONED:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            found.append(f"{name} (not installed)")
    return ", ".join(found)


def _machine() -> str:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip() + ", "
                break
    except OSError:
        pass
    return f"{platform.system()} {platform.machine()}, {model}{os.cpu_count()} CPUs, Python {platform.python_version()}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="smaller workloads, 3 timed rounds")
    mode.add_argument("--check", action="store_true", help="tiny workloads, 1 round: verify results, judge no speed")
    parser.add_argument("--json", type=Path, help="write the raw samples as JSON to this path")
    parser.add_argument("--rounds", type=int, help="timed rounds (default 7, or 3 with --quick)")
    parser.add_argument("--only", help="run only the setups whose key contains this text (e.g. 'aiohttp')")
    args = parser.parse_args(argv)

    sizes = plan.CHECK if args.check else plan.QUICK if args.quick else plan.FULL
    rounds = args.rounds or (1 if args.check else 3 if args.quick else 7)
    setups = [s for s in plan.setups(sizes) if args.only is None or args.only in s.key]
    started = time.perf_counter()
    try:
        samples = run_rounds(setups, rounds, warm_up=not args.check)
    except CheckFailed as exc:
        print(f"benchmark check failed: {exc}", file=sys.stderr)
        for note in getattr(exc, "__notes__", []):
            print(f"  {note}", file=sys.stderr)
        return 1
    elapsed = time.perf_counter() - started
    if args.json:
        document = {"sizes": sizes.describe(), "rounds": rounds, "samples": report.samples_json(samples)}
        args.json.write_text(json.dumps(document, indent=1))
    compared = report.compare(plan.rows(), samples)
    if args.check:
        count = sum(len(runs) for per in samples.values() for runs in per.values())
        print(f"benchmark check passed: {len(setups)} setups, {count} results verified in {elapsed:.1f} s")
        return 0

    command = (
        "python -m benchmarks"
        + (" --quick" if args.quick else "")
        + (f" --rounds {args.rounds}" if args.rounds else "")
    )
    header = [
        f"`{command}` on {time.strftime('%Y-%m-%d %H:%M')}, {_machine()}.",
        "",
        f"Versions: {_versions()}.",
        "",
        f"Medians of {rounds} rounds after a discarded warm-up round (min-max in brackets); "
        f"every round ran every setup once. Sizes: {sizes.describe()}. Total time {elapsed / 60:.1f} min.",
        "",
        "Ratio = wsfake / alternative (medians): above 1 wsfake is faster, except heap (below 1 wsfake uses less). "
        "CPU = process CPU time per operation, client and server together; its ratio is alternative / wsfake.",
    ]
    results = report.results_markdown(header, compared, plan.targets(), report.reading_text())
    table = report.readme_table(compared)
    print(results)
    print(table)
    if not args.quick and args.only is None:
        (HERE / "RESULTS.md").write_text(results)
        (HERE / "README_TABLE.md").write_text(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

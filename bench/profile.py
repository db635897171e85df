"""`python -m bench.profile` (`make bench-profile`): where the CPU of one order goes, process by process.

The orders scenario's stack and load (bench/orders.py: place → stock reserved → pay through the
gateway, open loop) at one fixed rate, while py-spy samples every shop process (gateway, workers,
streams, relay) without stopping it (`--nonblocking`) and the CPU meter counts every process of the
machine, the servers included. It writes, under `bench/results/profiles/LABEL/`:

- `PROCESS.svg`: a flame graph of that process over the measured seconds (`PROCESS.txt`: its
  collapsed stacks, for other tools);
- `cpu.json` / `cpu.md`: CPU per order of each process group, in ms, the step's latencies, and each
  process's costliest functions.

Run it before and after a change with two labels, and compare: a figure the change did not move is
a guess that was wrong. (py-spy costs the sampled processes a little CPU of its own: compare
profiles with profiles, and take the headline figures from `make bench`, which runs without it.)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench import flamegraph
from bench.orders import cpu_ms_per_operation, setup, step
from bench.processes import CpuMeter
from bench.stack import bench_stack

ROOT = Path(__file__).resolve().parent / "results" / "profiles"
SAMPLES_PER_SECOND = 97  # not a multiple of any timer in the stack, so no loop is sampled in step


def _py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(found).exists():
        raise SystemExit("bench.profile needs py-spy: .venv/bin/pip install py-spy")
    return found


def _record(pids: dict[str, int], seconds: float, out: Path) -> list[subprocess.Popen[bytes]]:
    return [
        subprocess.Popen(
            [
                _py_spy(),
                "record",
                "--nonblocking",
                # Only a thread holding the GIL: Python running, not a thread waiting on a socket,
                # a lock or a C call that let the GIL go (the flame graph is CPU, not wall time).
                "--gil",
                "--pid",
                str(pid),
                "--duration",
                str(int(seconds)),
                "--rate",
                str(SAMPLES_PER_SECOND),
                "--format",
                "raw",
                "--output",
                str(out / f"{name}.txt"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for name, pid in pids.items()
    ]


def run(args: argparse.Namespace) -> dict[str, Any]:
    out = ROOT / args.label
    out.mkdir(parents=True, exist_ok=True)
    with bench_stack(Path("var/log/bench-profile.log")) as stack:
        who = setup(stack, args.customers)
        meter = CpuMeter(stack.pids)
        # Warm up first (connections, prepared statements, JIT-less caches), then measure and sample.
        asyncio.run(step(stack.base, who, args.rate, args.warmup, 0, meter))
        recorders = _record(stack.pids(), args.seconds, out)
        figures = asyncio.run(step(stack.base, who, args.rate, args.seconds, 0, meter))
        for recorder in recorders:
            recorder.wait(timeout=60)
    hottest = {
        path.stem: flamegraph.render(path, path.with_suffix(".svg"), f"{path.stem} at {args.rate:g} orders/s")
        for path in sorted(out.glob("*.txt"))
    }
    cpu = figures["cpu_percent_of_one_core"]
    per_order = cpu_ms_per_operation(cpu, figures["achieved_rate"])
    results = {
        "label": args.label,
        "rate": args.rate,
        "seconds": args.seconds,
        "achieved_rate": figures["achieved_rate"],
        "p50_ms": figures.get("p50_ms"),
        "p99_ms": figures.get("p99_ms"),
        "place_p99_ms": figures["place_p99_ms"],
        "cpu_percent_of_one_core": cpu,
        "cpu_ms_per_order": per_order,
        "cpu_ms_per_order_total": round(sum(per_order.values()), 2),
        "flame_graphs": sorted(p.name for p in out.glob("*.svg")),
        "hottest_functions": hottest,
    }
    (out / "cpu.json").write_text(json.dumps(results, indent=2) + "\n")
    lines = [
        f"# Profile `{args.label}`: {args.rate:g} orders/s offered, {figures['achieved_rate']:.1f} achieved",
        "",
        f"p50 {results['p50_ms']} ms, p99 {results['p99_ms']} ms (place → pay answered);"
        f" CPU per order, every process: **{results['cpu_ms_per_order_total']} ms**",
        "",
        "| process | % of one core | ms of CPU per order |",
        "|---|---:|---:|",
        *(
            f"| {name} | {cpu[name]:.1f} | {per_order[name]:.2f} |"
            for name in sorted(per_order, key=lambda n: -per_order[n])
        ),
        "",
        "Flame graphs: " + ", ".join(f"[{name}]({name})" for name in results["flame_graphs"]),
    ]
    for process, functions in hottest.items():
        lines += ["", f"## {process}: the costliest functions", "", "| function | alone % | with callees % |"]
        lines += ["|---|---:|---:|"] + [
            f"| `{name}` | {own:.1f} | {total:.1f} |" for name, own, total in functions
        ]
    (out / "cpu.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return results


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("--label", required=True, help="the folder under bench/results/profiles/")
    parser.add_argument("--rate", type=float, default=25, help="orders/s offered")
    parser.add_argument("--seconds", type=float, default=30, help="measured (and sampled) seconds")
    parser.add_argument("--warmup", type=float, default=8)
    parser.add_argument("--customers", type=int, default=50)
    run(parser.parse_args())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

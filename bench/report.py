"""Writing results: every scenario's JSON and Markdown; the `orders` scenario's table and latency chart."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

LATENCY_LIMIT_MS = 250.0
OUT_DIR = Path("var/bench")  # every scenario's results, and the suite's summary


def machine(postgres_url: str | None = None) -> dict[str, Any]:
    """Cores, memory, Python and (when given a database) PostgreSQL version of this run."""
    found: dict[str, Any] = {
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                found["memory_gib"] = round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    if postgres_url:
        try:
            import psycopg

            with psycopg.connect(postgres_url) as conn:
                row = conn.execute("SHOW server_version").fetchone()
                found["postgresql"] = row[0] if row else None
        except Exception as exc:  # a report without the version beats no report
            found["postgresql"] = f"unknown ({exc})"
    return found


def markdown(results: dict[str, Any]) -> str:
    lines = [
        "| offered orders/s | achieved/s | p50 ms | p95 ms | p99 ms | max ms | place p99 ms | errors"
        " | passed |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|:---:|",
    ]
    for step in results.get("steps", []):
        lines.append(
            f"| {step['offered_rate']:g} | {step['achieved_rate']:.1f} | {step['p50_ms']:.0f}"
            f" | {step['p95_ms']:.0f} | {step['p99_ms']:.0f} | {step['max_ms']:.0f}"
            f" | {step.get('place_p99_ms', 0):.0f} | {step['errors']}/{step['count']}"
            f" | {'yes' if step.get('passed') else 'no'} |"
        )
    summary = [
        "",
        "| orders scenario | measured |",
        "|---|---|",
    ]
    sustained = results.get("sustained_rate")
    summary.append(
        f"| highest rate with p99 < {LATENCY_LIMIT_MS:.0f} ms (place → pay) | {sustained} orders/s |"
    )
    half = results.get("at_half")
    if half:
        summary.append(
            f"| at 50% ({half['offered_rate']:g}/s): p50 / p95 / p99 (place → pay)"
            f" | {half['p50_ms']:.0f} / {half['p95_ms']:.0f} / {half['p99_ms']:.0f} ms |"
        )
        summary.append(
            f"| at 50%: placement alone p50 / p95 / p99"
            f" | {half['place_p50_ms']:.0f} / {half['place_p95_ms']:.0f} / {half['place_p99_ms']:.0f} ms |"
        )
    baseline = results.get("baseline")
    if baseline:
        summary.append(
            f"| pgbench, the placement's SQL ({baseline['clients']} clients, {baseline['seconds']} s)"
            f" | {baseline['tps']:.0f} transactions/s |"
        )
    per_order = results.get("cpu_ms_per_order")
    if per_order and baseline and baseline.get("cpu_ms_per_transaction"):
        per_transaction = sum(baseline["cpu_ms_per_transaction"].values())
        summary.append(
            f"| CPU per order (whole machine) / per pgbench transaction"
            f" | {sum(per_order.values()):.1f} ms / {per_transaction:.1f} ms |"
        )
        summary.append(
            "| CPU per order by process | "
            + ", ".join(
                f"{k} {v:.1f}" for k, v in sorted(per_order.items(), key=lambda kv: -kv[1]) if v >= 0.05
            )
            + " ms |"
        )
    lifecycle = results.get("lifecycle")
    if lifecycle:
        summary.append(
            f"| pgbench, the order's lifecycle on both databases ({lifecycle['clients_per_database']}"
            f" clients each, {lifecycle['lifecycles']:,} lifecycles) | {lifecycle['tps']:.0f} lifecycles/s |"
        )
    if results.get("ratio") is not None:
        met = "met" if results["target_met"] else "NOT met"
        summary.append(
            f"| sustained ÷ pgbench placement (goal ≥ 12%) | {results['ratio'] * 100:.1f}% ({met}) |"
        )
    if results.get("lifecycle_ratio") is not None:
        summary.append(
            f"| sustained ÷ pgbench lifecycle (goal ≥ 50%) | {results['lifecycle_ratio'] * 100:.1f}% |"
        )
    tracing = results.get("tracing")
    summary.append(
        "| tracing | "
        + (
            f"SDK on, {tracing['OTEL_TRACES_SAMPLER']} {tracing['OTEL_TRACES_SAMPLER_ARG']},"
            f" exported to {tracing.get('OTEL_EXPORTER_OTLP_ENDPOINT')} |"
            if tracing
            else "off (OTEL_SDK_DISABLED=true) |"
        )
    )
    m = results.get("machine", {})
    if m:
        summary.append(
            f"| machine | {m.get('cores')} cores, {m.get('memory_gib')} GiB, Python {m.get('python')},"
            f" PostgreSQL {m.get('postgresql')} |"
        )
    return "\n".join(lines + summary) + "\n"


def chart(results: dict[str, Any], out_dir: Path, stem: str = "orders-latency") -> list[Path]:
    """p50/p95/p99 (place → pay) against offered rate, with the 250 ms limit; SVG and PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = sorted(results.get("steps", []), key=lambda s: float(s["offered_rate"]))
    rates = [float(s["offered_rate"]) for s in steps]
    fig, ax = plt.subplots(figsize=(8, 5))
    for key, label in (("p50_ms", "p50"), ("p95_ms", "p95"), ("p99_ms", "p99")):
        ax.plot(rates, [float(s[key]) for s in steps], marker="o", label=label)
    ax.axhline(LATENCY_LIMIT_MS, color="red", linestyle="--", label=f"{LATENCY_LIMIT_MS:.0f} ms")
    if results.get("sustained_rate"):
        ax.axvline(float(results["sustained_rate"]), color="grey", linestyle=":", label="sustained")
    ax.set_xlabel("offered load (orders/s, place + pay)")
    ax.set_ylabel("latency from intended send (ms)")
    ax.set_yscale("log")
    ax.set_title("orders: latency against offered load (open loop)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    written = []
    for suffix in ("svg", "png"):
        path = out_dir / f"{stem}.{suffix}"
        fig.savefig(path)
        written.append(path)
    plt.close(fig)
    return written


def save(name: str, results: dict[str, Any], table: str | None, out_dir: Path = OUT_DIR) -> list[Path]:
    """A scenario's results as `name.json` and, given its Markdown table, `name.md`; the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / f"{name}.json"
    json_path.write_text(json.dumps(results, indent=2, default=str) + "\n")
    if table is None:
        return [json_path]
    md_path = out_dir / f"{name}.md"
    md_path.write_text(table)
    return [json_path, md_path]


def publish(name: str, results: dict[str, Any], table: str) -> list[Path]:
    """save() into OUT_DIR, then the table and the paths written (and the run's length) on stdout."""
    written = save(name, results, table)
    print(table)
    took = f"{results['run_seconds']} s; " if "run_seconds" in results else ""
    print(f"({took}written: {', '.join(map(str, written))})")
    return written


def write(results: dict[str, Any], out_dir: Path = OUT_DIR, name: str = "orders") -> list[Path]:
    """The orders scenario's JSON, table and latency chart (`name`.json, .md, -latency.svg/.png)."""
    written = save(name, results, markdown(results), out_dir)
    try:
        written += chart(results, out_dir, f"{name}-latency")
    except ImportError:
        print("bench: no chart, matplotlib is not installed (.venv/bin/pip install matplotlib)")
    return written


def pg_version_of(binary: str) -> str:
    return subprocess.run([binary, "--version"], capture_output=True, text=True, check=False).stdout.strip()

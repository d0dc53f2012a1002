"""The scaling curve of issue 13: bursts of 100, 1,000 and 5,000 one-step Incidents created at once.

Each burst runs `bench.incidents` afresh in a process of its own (its own sandbox with one Deployment per
Incident, its own operator process: a sandbox that served an earlier burst in the same process was still
held, and made the next burst's figures 10-20 % worse) and reports how long the burst takes to be
resolved and the CPU each Incident costs the operator and the sandbox. The cost per Incident must not
grow with the size of the burst. With matplotlib installed (`pip install -e '.[bench]'`) the curve is also
drawn to docs/storm-scaling.png.

Each burst waits until its Incidents are all resolved, or until none has been resolved for a minute
(`incidents.STALL_SECONDS`): a loaded machine makes a burst slow, not stalled.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import pathlib
import subprocess
import sys
from typing import Any

from bench import incidents, sandboxes

COUNTS = (100, 1000, 5000)
PLOT = sandboxes.REPO / "docs" / "storm-scaling.png"


def row(results: dict[str, Any]) -> dict[str, float]:
    """What the curve shows of one burst."""
    count, resolved, cpu, memory = results["count"], results["resolved"], results["cpu"], results["memory"]
    first, setup = results["first action"], results["setup"]
    return {"count": count, "unresolved": len(results["unresolved"]), "setup_s": setup["seconds"],
            "setup_ms": setup["cpu_s"] / (count + 1) * 1000,
            "first_p50_s": first["p50_ms"] / 1000, "first_p95_s": first["p95_ms"] / 1000,
            "resolved_p50_s": resolved["p50_ms"] / 1000, "resolved_p95_s": resolved["p95_ms"] / 1000,
            "resolved_max_s": resolved["max_ms"] / 1000,
            "operator_ms": cpu["operator_s"] / count * 1000, "sandbox_ms": cpu["sandbox_s"] / count * 1000,
            "operator_peak_mb": memory["operator_peak_mb"], "sandbox_peak_mb": memory["sandbox_peak_mb"]}


def main(counts: tuple[int, ...] = COUNTS) -> list[dict[str, float]]:
    """Each burst's row, each burst run by a child process (`--burst N`)."""
    rows = []
    for count in counts:
        child = subprocess.run([sys.executable, "-m", "bench.scaling", "--burst", str(count)], check=True,
                               stdout=subprocess.PIPE, text=True)
        rows.append(json.loads(child.stdout.strip().splitlines()[-1]))
    return rows


def report(rows: list[dict[str, float]]) -> str:
    lines = ["Scaling curve, one-step Incidents created all at once (seconds after the creation; CPU per Incident; "
             "RSS at most):",
             f"  {'burst':>6}  {'first action p50/p95':>20}  {'resolved p50/p95':>16}  {'all resolved':>12}  "
             f"{'operator CPU':>12}  {'sandbox CPU':>11}  {'operator RSS':>12}  {'sandbox RSS':>11}  "
             f"{'set-up, sandbox CPU per Deployment':>34}"]
    for r in rows:
        lines.append(f"  {r['count']:>6}  {r['first_p50_s']:>8.1f} / {r['first_p95_s']:>5.1f} s  "
                     f"{r['resolved_p50_s']:>6.1f} / {r['resolved_p95_s']:>5.1f} s  {r['resolved_max_s']:>10.1f} s  "
                     f"{r['operator_ms']:>9.1f} ms  {r['sandbox_ms']:>8.1f} ms  "
                     f"{r['operator_peak_mb']:>9.0f} MB  {r['sandbox_peak_mb']:>8.0f} MB  "
                     f"{r['setup_s']:>21.0f} s, {r['setup_ms']:>4.1f} ms"
                     + (f"  NOT RESOLVED: {r['unresolved']:.0f}" if r["unresolved"] else ""))
    lines.append("  (target: the CPU per Incident does not grow with the burst; "
                 "sandbox ≤ 10 ms, operator ≤ 8 ms per Incident at 1,000)")
    return "\n".join(lines)


def plot(rows: list[dict[str, float]], path: pathlib.Path = PLOT) -> bool:
    """Draw the curve to `path`; False when matplotlib (the `bench` extra) is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib import pyplot
    except ImportError:
        return False
    counts = [r["count"] for r in rows]
    figure, (times, costs) = pyplot.subplots(1, 2, figsize=(10, 4))
    times.plot(counts, [r["resolved_p50_s"] for r in rows], "o-", label="resolved p50")
    times.plot(counts, [r["resolved_p95_s"] for r in rows], "^-", label="resolved p95")
    times.plot(counts, [r["resolved_max_s"] for r in rows], "s-", label="all resolved")
    times.set(xscale="log", yscale="log", xlabel="Incidents created at once", ylabel="seconds after the creation",
              title="Time to resolve")
    costs.plot(counts, [r["operator_ms"] for r in rows], "o-", label="operator")
    costs.plot(counts, [r["sandbox_ms"] for r in rows], "s-", label="sandbox (+ benchmark client)")
    costs.set(xscale="log", xlabel="Incidents created at once", ylabel="CPU ms per Incident",
              title="CPU per Incident", ylim=(0, None))
    for r in rows:
        if r["unresolved"]:  # it stalled: the point is the last of those that were resolved
            times.annotate(f"{r['unresolved']:.0f} not resolved", (r["count"], r["resolved_max_s"]),
                           textcoords="offset points", xytext=(-100, 0), va="center")
    for axes in (times, costs):
        axes.legend()
        axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    pyplot.close(figure)
    return True


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", default=",".join(map(str, COUNTS)), help="burst sizes, comma-separated")
    parser.add_argument("--plot", type=pathlib.Path, default=PLOT)
    parser.add_argument("--burst", type=int, default=None, help=argparse.SUPPRESS)  # one burst, in a child
    args = parser.parse_args()
    if args.burst is not None:
        print(json.dumps(row(asyncio.run(incidents.main(args.burst, rate=0)))))
        sys.exit(0)
    curve = main(tuple(int(c) for c in args.counts.split(",")))
    print(report(curve))
    print(f"plot written to {args.plot}" if plot(curve, args.plot) else "matplotlib not installed: no plot")

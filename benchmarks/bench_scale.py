"""Does a large file still train within its budget? Prints Markdown.

Run from the repository root:  uv run python benchmarks/bench_scale.py [--rows 100000 1000000] [--budget 60]

A synthetic regression table (20 numeric columns, a 50-label category, a date, noise; written
with seed 0, nothing downloaded) is written as CSV. Printed per size: the file size, the time to
read it, to profile it and to fingerprint it as a DataFrame (what the dashboard and the Python API
pass), then one `automl train --time-budget B` run as a separate process: its wall time, its peak
memory, the rows searched on, the number of models tried and the chosen model's validation RMSE.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def write_table(path: Path, n: int, seed: int = 0) -> None:
    import pandas as pd

    rng = np.random.default_rng(seed)
    labels = np.array([f"c{i}" for i in range(50)])
    frame = pd.DataFrame({f"x{i}": rng.normal(size=n) for i in range(20)})
    codes = rng.integers(0, 50, n)
    frame["cat"] = labels[codes]
    frame["day"] = pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 1000, n), unit="D")
    frame["y"] = frame.x0 * 2 + np.sin(frame.x1 * 3) + (codes % 7) * 0.3 + rng.normal(scale=0.5, size=n)
    frame.to_csv(path, index=False)


def seconds(fn):
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--budget", type=float, default=60)
    args = parser.parse_args()

    from automl_core import profile_table, read_table
    from automl_core.intake import _frame_fingerprint

    print(f"# Training on large files, {dt.date.today()}\n")
    print(f"Machine: {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()}. "
          f"`uv run python benchmarks/bench_scale.py --rows {' '.join(map(str, args.rows))} "
          f"--budget {args.budget:g}`\n")
    print(f"| rows | CSV | read | profile | fingerprint (DataFrame) | train wall ({args.budget:g} s budget) | "
          "peak memory | searched on | models tried | chosen | validation RMSE |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|")
    for n in args.rows:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"scale_{n}.csv"
            write_table(path, n)
            read_s, frame = seconds(lambda p=path: read_table(p))
            profile_s, _ = seconds(lambda f=frame: profile_table(f, "y"))
            fingerprint_s, _ = seconds(lambda f=frame: _frame_fingerprint(f))
            del frame
            out = Path(tmp) / "model"
            env = {**os.environ, "AUTOML_HOME": str(Path(tmp) / "home")}
            command = ["automl", "train", str(path), "--target", "y", "--time-budget", str(args.budget),
                       "--out", str(out), "--json"]
            before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
            wall, result = seconds(lambda c=command, e=env: subprocess.run(c, env=e, capture_output=True,
                                                                          text=True, check=False))
            peak = max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024
            if result.returncode != 0:
                print(f"| {n:,} | failed: {result.stderr.strip().splitlines()[-1]} |")
                continue
            summary = json.loads((out / "model.json").read_text())
            plan = summary.get("cv_plan") or {}
            searched = str(plan.get("reason", "")).split(":")[0]  # "150,000 rows", the search's sample
            print(f"| {n:,} | {path.stat().st_size / 1e6:,.0f} MB | {read_s:.1f} s | {profile_s:.1f} s | "
                  f"{fingerprint_s:.2f} s | {wall:.1f} s | {peak:,.0f} MB | {searched} | "
                  f"{len(summary['leaderboard'])} | {summary['best'][:40]} | {summary['cv_score']:.4f} |", flush=True)


if __name__ == "__main__":
    main()

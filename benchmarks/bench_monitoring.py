"""How do monitoring queries scale with months of prediction logs? Prints Markdown.

Run from the repository root:  uv run python benchmarks/bench_monitoring.py [--rows 100000 1000000]

A model is trained on titanic (linear, 3 s) and registered in a temporary home; then N prediction
records (one input row of the model's 7 columns each, spread evenly over 90 days, 10 % with
feedback) are written the way serving processes write them: JSONL files, one per process. Printed:
the disk size of the logs, and the wall time of what the Monitoring page asks for (the overview
of the last week: traffic, drift, performance) and of the store's raw queries.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = Path(os.environ.get("AUTOML_DATASETS", ROOT.parent / "shared" / "datasets")) / "splits"
DAYS = 90


def write_logs(store, ref: str, rows: list[dict], n: int, *, processes: int = 6, seed: int = 0) -> None:
    """N records over DAYS days, as `processes` serving processes would write them (one file each)."""
    rng = np.random.default_rng(seed)
    name, version = ref.split("@")
    now = time.time()
    ts = np.sort(now - DAYS * 86400 * rng.random(n))
    which = rng.integers(0, len(rows), n)
    latency = rng.lognormal(0.5, 0.4, n)
    predictions_dir, feedback_dir = store.monitoring.predictions_dir, store.monitoring.feedback_dir
    predictions_dir.mkdir(parents=True, exist_ok=True)
    feedback_dir.mkdir(parents=True, exist_ok=True)
    chunks = np.array_split(np.arange(n), processes)
    for p, chunk in enumerate(chunks):
        with open(predictions_dir / f"{p}.jsonl", "w") as out, open(feedback_dir / f"{p}.jsonl", "w") as back:
            for i in chunk:
                row = rows[which[i]]
                label = "survived" if rng.random() < 0.4 else "died"
                record = {"request_id": f"r{i}", "ts": float(ts[i]), "model": name, "version": version,
                          "variant": "champion", "inputs": row,
                          "outputs": {"prediction": label, "probabilities": {"died": 0.6, "survived": 0.4}},
                          "latency_ms": float(latency[i])}
                out.write(json.dumps(record) + "\n")
                if rng.random() < 0.1:
                    actual = label if rng.random() < 0.8 else ("died" if label == "survived" else "survived")
                    back.write(json.dumps({"request_id": f"r{i}", "ts": float(ts[i]) + 3600, "actual": actual}) + "\n")


def seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    args = parser.parse_args()

    import pandas as pd

    from automl_core.training import TrainRequest, run_training
    from store import Store

    print(f"# Monitoring queries over {DAYS} days of prediction logs, {dt.date.today()}\n")
    print(f"Machine: {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()}. "
          f"`uv run python benchmarks/bench_monitoring.py --rows {' '.join(map(str, args.rows))}`\n")
    print("| records | logs on disk | overview, last 7 days, hourly (page default) | overview, all 90 days, daily | "
          "traffic, 90 days | inputs, newest 5,000 | labelled, 90 days |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for n in args.rows:
        with tempfile.TemporaryDirectory() as home:
            store = Store(Path(home))
            version = run_training(store, TrainRequest(data=str(DATA / "titanic.train.csv"), target="survived",
                                                       time_budget=3, include=("linear",), name="titanic")).version
            rows = pd.read_csv(DATA / "titanic.test.csv").drop(columns=["survived"])
            rows = [{k: (None if pd.isna(v) else v) for k, v in r.items()} for r in rows.to_dict("records")]
            write_logs(store, version.ref, rows, n)
            print(measure(store, n), flush=True)


def measure(store, n: int) -> str:
    """One table row: the size of the logs and the wall time of each query."""
    from automl_core.monitoring import monitoring_overview

    size = sum(p.stat().st_size for p in store.monitoring.directory.rglob("*") if p.is_file())
    week_ago = time.time() - 7 * 86400
    overview = seconds(lambda: monitoring_overview(store, "titanic", bucket="1h", since=week_ago))
    everything = seconds(lambda: monitoring_overview(store, "titanic", bucket="1d"))
    traffic = seconds(lambda: store.monitoring.traffic("titanic", bucket="1d"))
    inputs = seconds(lambda: store.monitoring.inputs("titanic", limit=5000))
    labelled = seconds(lambda: store.monitoring.labelled("titanic"))
    return (f"| {n:,} | {size / 1e6:,.0f} MB | {overview:.2f} s | {everything:.2f} s | {traffic:.2f} s | "
            f"{inputs:.2f} s | {labelled:.2f} s |")

if __name__ == "__main__":
    main()

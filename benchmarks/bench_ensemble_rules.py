"""Would another way of combining the finalists pick better? Test scores of six ensemble rules.

Runs from the project root (about 25 minutes on 2 cores for seeds 0,1,2):

    uv run python benchmarks/bench_ensemble_rules.py [--budget 60] [--seeds 0,1,2] [--only wine,diabetes]

For each supervised dataset (not time series) and split seed (0 is the shared split, others new
stratified 75/25 splits, as in bench_search.py --resplits), the engine is fitted once. Then each
rule weights the same candidates (the finalists, on their re-validated out-of-fold predictions
where the run re-validated) and is refit and scored on the test rows:

- current: what the engine chose (greedy, voting or stacking, or the best single model);
- greedy: Caruana's forward selection with replacement, alone;
- sorted_init: the same, started from an equal mix of the three best (Caruana et al. 2004);
- bagged: greedy selection on 20 bootstrap resamples of the rows, weights averaged;
- vote5: the plain average of the five best;
- vote_families: the plain average of the best model of each of the five best families;
- single: the best model alone.

A rule "hits" when its test score is within 1% of the best of the top five distinct leaderboard
models (the selection measure of bench_search.py). Results: results/ensemble_rules.{md,json}.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_search as bs  # noqa: E402

sys.path.insert(0, str(bs.BENCH))
import bench_common as bc  # noqa: E402

RULES = ("current", "greedy", "sorted_init", "bagged", "vote5", "vote_families", "single")


def sorted_init(predictions, y, metric, classes, k: int = 3, rounds: int = 40) -> np.ndarray:
    counts = np.zeros(len(predictions))
    counts[:k] = 1
    current = sum(predictions[:k]) / k
    best, best_counts = metric.signed(y, current, classes), counts.copy()
    for step in range(k + 1, rounds + 1):
        scores = [metric.signed(y, current + (p - current) / step, classes) for p in predictions]
        j = int(np.argmax(scores))
        counts[j] += 1
        current = current + (predictions[j] - current) / step
        if scores[j] > best + 1e-12:
            best, best_counts = scores[j], counts.copy()
    return best_counts / best_counts.sum()


def bagged(predictions, y, metric, classes, bags: int = 20, seed: int = 0) -> np.ndarray:
    from automl_core.ensemble import greedy_selection

    rng = np.random.default_rng(seed)
    total = np.zeros(len(predictions))
    for _ in range(bags):
        rows = rng.integers(0, len(y), len(y))
        weights, _ = greedy_selection([p[rows] for p in predictions], y[rows], metric, classes)
        total += weights
    return total / total.sum()


def rule_weights(candidates, predictions, y, metric, classes) -> dict[str, np.ndarray]:
    from automl_core.ensemble import greedy_selection

    n = len(predictions)
    top = np.zeros(n)
    top[: min(5, n)] = 1
    families, per_family = set(), np.zeros(n)
    for i, trial in enumerate(candidates):
        if trial.family not in families and len(families) < 5:
            families.add(trial.family)
            per_family[i] = 1
    single = np.zeros(n)
    single[0] = 1
    return {
        "greedy": greedy_selection(predictions, y, metric, classes)[0],
        "sorted_init": sorted_init(predictions, y, metric, classes),
        "bagged": bagged(predictions, y, metric, classes),
        "vote5": top / top.sum(),
        "vote_families": per_family / per_family.sum(),
        "single": single,
    }


def study_once(entry: dict, folder: Path, budget: int) -> dict:
    from sklearn.pipeline import Pipeline

    from automl_core import AutoML, read_table
    from automl_core.ensemble import WeightedEnsemble
    from automl_core.modelfile import predictions_frame
    from automl_core.revalidation import finalists

    model = AutoML(time_budget=budget - 3, random_state=0).fit(read_table(folder / entry["train_file"]), entry["target"])
    test = read_table(folder / entry["test_file"])
    truth = bc.read_split(str(folder), entry, "test")[entry["target"]]
    features = test.drop(columns=[entry["target"]])
    meta = {"task": model.task_, "classes": None if model.classes_ is None else list(map(str, model.classes_))}
    known = [str(c) for c in model.classes_] if entry["task"] in bc.CLASSIFICATION else None

    def test_score(pipeline) -> float:
        return bc.score(entry, truth, predictions_frame(pipeline, meta, features), known)[entry["metric"]]

    cleaner, X_clean, y_all, ranked, _ = model._refit_context
    metric, y = model.metric_object_, model.oof_y_
    classes = () if model.classes_ is None else tuple(model.classes_)
    pool = [t for t in ranked if t.revalidated] if ranked[0].revalidated else ranked
    candidates = finalists(pool)
    width = lambda t: np.asarray(t.oof, dtype=float).reshape(len(y), -1)  # noqa: E731
    covered = ~np.isnan(width(candidates[0])[:, 0])
    candidates = [t for t in candidates if not np.isnan(width(t)[covered]).any()]
    predictions = [np.asarray(t.oof, dtype=float)[covered] for t in candidates]
    names = [t.name for t in candidates]
    members: dict[str, Pipeline] = {}

    def member(name: str) -> Pipeline:
        if name not in members:
            refit = model.refit_model(name)
            members[name] = Pipeline([("prep", refit.named_steps["prep"]), ("model", refit.named_steps["model"])])
        return members[name]

    def blend(weights: np.ndarray) -> Pipeline:
        used = [(n, w) for n, w in zip(names, weights) if w > 0]
        if len(used) == 1:
            return Pipeline([("clean", cleaner), ("model", member(used[0][0]))])
        ensemble = WeightedEnsemble([(n, member(n)) for n, _ in used], weights=[w for _, w in used], task=model.task_)
        return Pipeline([("clean", cleaner), ("model", ensemble.fit(X_clean, y_all, fitted=True))])

    row = {"dataset": entry["name"], "metric": entry["metric"], "chosen_model": model.best_model_name_,
           "candidates": len(candidates), "test": {"current": test_score(model.best_estimator_)}, "weights": {}}
    for rule, weights in rule_weights(candidates, predictions, y[covered], metric, classes).items():
        row["test"][rule] = test_score(blend(weights))
        row["weights"][rule] = {n: round(float(w), 3) for n, w in zip(names, weights) if w > 0}
    row["top_five"] = {name: test_score(model.refit_model(name)) for name in bs.top_five(model)}
    return row


def summarise(rows: list[dict]) -> list[str]:
    """Per rule: hits (within 1% of the best of the top five) and the median regret against the best rule."""
    lines = ["| rule | within 1% | median regret % | mean regret % |", "|---|---|---|---|"]
    for rule in RULES:
        hits, regrets = 0, []
        for row in rows:
            sign = -1 if bc.HIGHER_IS_BETTER[row["metric"]] else 1
            best_five = min(sign * v for v in row["top_five"].values())
            best_any = min([best_five] + [sign * v for v in row["test"].values()])
            value = sign * row["test"][rule]
            hits += (value - min(best_five, value)) / abs(best_five) <= 0.01
            regrets.append(100 * (value - best_any) / abs(best_any))
        lines.append(f"| {rule} | {hits} of {len(rows)} | {statistics.median(regrets):.2f} | {statistics.mean(regrets):.1f} |")
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--budget", type=int, default=60)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--only", default="")
    args = ap.parse_args()
    rows = []
    for seed, entry, folder in bs.split_folders(args.only, [int(s) for s in args.seeds.split(",")]):
        rows.append({"split_seed": seed, **study_once(entry, folder, args.budget)})
        print(json.dumps(rows[-1]), flush=True)
    lines = [
        f"# Ensemble rules at {args.budget} s, {dt.date.today().isoformat()}",
        "",
        f"Machine: {bs.machine()}. Split seeds {args.seeds} (0 is the shared split).",
        "",
        "Each rule combines the same finalists; its test score is compared with the best of the top five "
        "distinct leaderboard models (within 1%) and with the best of all rules (regret).",
        "",
        *summarise(rows),
        "",
        "| dataset | split seed | " + " | ".join(RULES) + " | best of top five |",
        "|---|---|" + "---|" * (len(RULES) + 1),
    ]
    for row in rows:
        five = (max if bc.HIGHER_IS_BETTER[row["metric"]] else min)(row["top_five"].values())
        lines.append(f"| {row['dataset']} | {row['split_seed']} | "
                     + " | ".join(f"{row['test'][r]:.5g}" for r in RULES) + f" | {five:.5g} |")
    (bs.RESULTS / "ensemble_rules.json").write_text(json.dumps(rows, indent=1))
    (bs.RESULTS / "ensemble_rules.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())

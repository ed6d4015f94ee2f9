"""Forecasting and clustering on data the product has never seen, through the command line.

Eight synthetic series (monthly "1949-01" dates, daily weekly + yearly cycles, a known promo column,
hourly, quarterly US dates, whole-number years, gaps, a random walk) are forecast and compared by
MAE with seasonal naive at the natural period and LightGBM on calendar features; seven tables
(scikit-learn's bundled iris, wine, breast cancer and digits, scaled blobs, numbers with a category,
iris with blank cells) are clustered and compared by adjusted Rand index with k-means given the true
k. Nothing is downloaded. Cases run one at a time, `automl train ... --time-budget 20` then
`automl predict`, from the project root:

    uv run python benchmarks/bench_unseen.py [--only a_monthly_airline,wine] [--out results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

BUDGET = 20.0


# ----------------------------------------------------------------------------- forecasting data
def _split(dates, y, horizon, exog=None):
    df = pd.DataFrame({"date": dates, "y": y})
    if exog is not None:
        for k, v in exog.items():
            df[k] = v
    return df.iloc[:-horizon].reset_index(drop=True), df.iloc[-horizon:].reset_index(drop=True)


def forecast_cases(rng_seed: int = 0) -> list[dict]:
    cases = []
    # a. monthly airline-like, multiplicative, "1949-01"
    rng = np.random.default_rng(rng_seed)
    n = 144
    t = np.arange(n)
    d = pd.date_range("1949-01-01", periods=n, freq="MS")
    season = 1 + 0.18 * np.sin(2 * np.pi * (t % 12 - 3) / 12) + 0.08 * np.cos(4 * np.pi * (t % 12) / 12)
    y = (110 + 2.6 * t) * season * np.exp(rng.normal(0, 0.03, n))
    tr, te = _split(d, np.round(y, 1), 24)
    cases.append(dict(name="a_monthly_airline", period="month12", fmt="%Y-%m", train=tr, test=te, exog=[]))

    # b. daily 3 years weekly + yearly + noise
    rng = np.random.default_rng(rng_seed + 1)
    d = pd.date_range("2018-01-01", "2020-12-31", freq="D")
    n = len(d)
    t = np.arange(n)
    weekly = np.array([0, 5, 8, 6, 10, 25, 18])[d.day_of_week]
    yearly = 30 * np.sin(2 * np.pi * d.day_of_year / 365.25)
    y = 200 + 0.03 * t + weekly + yearly + rng.normal(0, 6, n)
    tr, te = _split(d, np.round(y, 2), 60)
    cases.append(dict(name="b_daily_week_year", period="day7", fmt="%Y-%m-%d", train=tr, test=te, exog=[]))

    # c. daily with promo exogenous (+30%)
    rng = np.random.default_rng(rng_seed + 2)
    d = pd.date_range("2019-01-01", "2020-12-31", freq="D")
    n = len(d)
    t = np.arange(n)
    promo = (rng.random(n) < 0.10).astype(int)
    base = 100 + 0.02 * t + np.array([0, 3, 5, 4, 8, 20, 15])[d.day_of_week] + 12 * np.sin(2 * np.pi * d.day_of_year / 365.25)
    y = base * (1 + 0.3 * promo) + rng.normal(0, 4, n)
    tr, te = _split(d, np.round(y, 2), 60, exog={"promo": promo})
    cases.append(dict(name="c_daily_promo", period="day7", fmt="%Y-%m-%d", train=tr, test=te, exog=["promo"]))

    # d. hourly 8 weeks, 24h + weekly pattern
    rng = np.random.default_rng(rng_seed + 3)
    d = pd.date_range("2023-01-02 00:00", periods=8 * 7 * 24, freq="h")
    n = len(d)
    hour = d.hour.to_numpy()
    daily = 40 * np.exp(-((hour - 9) ** 2) / 6) + 55 * np.exp(-((hour - 18) ** 2) / 5)
    weekend = np.isin(d.day_of_week, [5, 6])
    y = 50 + np.where(weekend, 0.4, 1.0) * daily + rng.normal(0, 4, n)
    tr, te = _split(d, np.round(y, 2), 48)
    cases.append(dict(name="d_hourly_24h_week", period="hour24", fmt="%Y-%m-%d %H:%M:%S", train=tr, test=te, exog=[]))

    # e. quarterly, US dates 03/31/2001
    rng = np.random.default_rng(rng_seed + 4)
    d = pd.date_range("2001-03-31", periods=60, freq="QE")
    t = np.arange(60)
    y = 200 + 3 * t + np.array([10, -5, 20, -25])[t % 4] + rng.normal(0, 3, 60)
    tr, te = _split(d, np.round(y, 2), 8)
    cases.append(dict(name="e_quarterly_us", period="quarter4", fmt="%m/%d/%Y", train=tr, test=te, exog=[]))

    # f. yearly, integer year column
    rng = np.random.default_rng(rng_seed + 5)
    years = np.arange(1950, 2021)
    y = 50 + 1.5 * (years - 1950) + rng.normal(0, 4, len(years))
    tr, te = _split(years, np.round(y, 2), 5)
    tr = tr.rename(columns={"date": "year"})
    te = te.rename(columns={"date": "year"})
    cases.append(dict(name="f_yearly_int", period="last", fmt=None, train=tr, test=te, exog=[], time_col="year"))

    # g. daily with 10% of training days missing, horizon 30
    rng = np.random.default_rng(rng_seed + 6)
    d = pd.date_range("2019-01-01", "2020-12-31", freq="D")
    n = len(d)
    t = np.arange(n)
    y = 150 + 0.02 * t + np.array([0, 4, 6, 5, 9, 22, 16])[d.day_of_week] + 20 * np.sin(2 * np.pi * d.day_of_year / 365.25)
    y = y + rng.normal(0, 5, n)
    tr, te = _split(d, np.round(y, 2), 30)
    keep = rng.random(len(tr)) >= 0.10
    tr = tr[keep].reset_index(drop=True)
    cases.append(dict(name="g_daily_gaps", period="day7", fmt="%Y-%m-%d", train=tr, test=te, exog=[]))

    # h. random walk, daily 500 points, horizon 30
    rng = np.random.default_rng(rng_seed + 7)
    d = pd.date_range("2020-01-01", periods=500, freq="D")
    y = 100 + np.cumsum(rng.normal(0, 1, 500))
    tr, te = _split(d, np.round(y, 3), 30)
    cases.append(dict(name="h_random_walk", period="last", fmt="%Y-%m-%d", train=tr, test=te, exog=[]))
    return cases


def seasonal_naive(train: pd.DataFrame, test: pd.DataFrame, period: str, time_col: str) -> np.ndarray:
    y = train["y"].to_numpy(float)
    if period == "last":
        return np.full(len(test), y[-1])
    offset = {
        "month12": pd.DateOffset(months=12),
        "quarter4": pd.DateOffset(months=12),
        "day7": pd.Timedelta(days=7),
        "hour24": pd.Timedelta(hours=24),
    }[period]
    lookup = dict(zip(pd.to_datetime(train[time_col]), y))
    first = pd.to_datetime(train[time_col]).min()
    out = []
    for when in pd.to_datetime(test[time_col]):
        back = when - offset
        while back not in lookup and back >= first:
            back = back - offset
        out.append(lookup.get(back, y[-1]))
    return np.asarray(out, float)


def calendar_features(df: pd.DataFrame, time_col: str, exog: list[str]) -> pd.DataFrame:
    if pd.api.types.is_integer_dtype(df[time_col]):
        out = pd.DataFrame({"year": df[time_col].to_numpy()})
    else:
        d = pd.to_datetime(df[time_col])
        out = pd.DataFrame({
            "year": d.dt.year, "month": d.dt.month, "day": d.dt.day, "dayofweek": d.dt.day_of_week,
            "hour": d.dt.hour, "dayofyear": d.dt.day_of_year,
        })
    for c in exog:
        out[c] = df[c].to_numpy()
    return out


def lgbm_baseline(train, test, time_col, exog) -> np.ndarray:
    import lightgbm as lgb

    model = lgb.LGBMRegressor(random_state=0, verbose=-1)
    model.fit(calendar_features(train, time_col, exog), train["y"].to_numpy(float))
    return model.predict(calendar_features(test, time_col, exog))


# ----------------------------------------------------------------------------- clustering data
def clustering_cases(seed: int = 0) -> list[dict]:
    from sklearn import datasets

    cases = []
    for name, loader in (("iris", datasets.load_iris), ("wine", datasets.load_wine),
                         ("breast_cancer", datasets.load_breast_cancer), ("digits", datasets.load_digits)):
        b = loader()
        cols = [re.sub(r"[^0-9a-zA-Z]+", "_", str(c)).strip("_") for c in
                (b.feature_names if hasattr(b, "feature_names") else range(b.data.shape[1]))]
        X = pd.DataFrame(b.data, columns=cols)
        cases.append(dict(name=name, X=X, y=b.target, k=len(np.unique(b.target)), cat=[]))

    X, y = datasets.make_blobs(n_samples=1000, centers=5, n_features=4, random_state=seed)
    X = X * np.array([1.0, 10.0, 100.0, 1000.0]) + np.array([0, 50, -300, 5000])
    cases.append(dict(name="blobs_scaled", X=pd.DataFrame(X, columns=["f1", "f2", "f3", "f4"]), y=y, k=5, cat=[]))

    rng = np.random.default_rng(seed)
    X, y = datasets.make_blobs(n_samples=600, centers=3, n_features=3, cluster_std=2.5, random_state=seed + 1)
    labels = np.array(["north", "south", "west"])
    segment = np.where(rng.random(600) < 0.8, labels[y], labels[rng.integers(0, 3, 600)])
    mixed = pd.DataFrame(X, columns=["x1", "x2", "x3"])
    mixed["segment"] = segment
    cases.append(dict(name="mixed_num_cat", X=mixed, y=y, k=3, cat=["segment"]))

    b = datasets.load_iris()
    Xi = pd.DataFrame(b.data, columns=["sepal_length", "sepal_width", "petal_length", "petal_width"])
    mask = rng.random(Xi.shape) < 0.10
    Xi = Xi.mask(mask)
    cases.append(dict(name="iris_10pct_blank", X=Xi, y=b.target, k=3, cat=[]))
    return cases


def kmeans_reference(X: pd.DataFrame, y, k, cat) -> float:
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score
    from sklearn.preprocessing import StandardScaler

    num = X.drop(columns=cat)
    num = num.fillna(num.mean())
    Z = StandardScaler().fit_transform(num)
    if cat:
        Z = np.hstack([Z, pd.get_dummies(X[cat]).to_numpy(float)])
    labels = KMeans(k, n_init=10, random_state=0).fit_predict(Z)
    return float(adjusted_rand_score(y, labels))


# ----------------------------------------------------------------------------- running
def run(cmd: list[str], repo: str, env: dict) -> dict:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=repo, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    err = proc.stderr.replace("\r", "\n")
    tail = "\n".join([line for line in err.splitlines() if line.strip()][-4:])
    payload = None
    for line in reversed(proc.stdout.strip().splitlines()):
        try:
            payload = json.loads(line)
            break
        except ValueError:
            continue
    return dict(cmd=" ".join(cmd), wall=round(wall, 2), rc=proc.returncode, stderr_tail=tail[-800:], json=payload)


def train_cmd(path, out, task, target=None):
    cmd = ["uv", "run", "automl", "train", str(path)]
    if target:
        cmd += ["--target", target]
    return cmd + ["--task", task, "--time-budget", f"{BUDGET:g}", "--out", str(out), "--json", "--no-register"]


def summarise_json(j):
    if not j:
        return {}
    return {k: j.get(k) for k in ("task", "metric", "cv_score", "best", "seconds")} | {
        "reason": (j.get("problem") or {}).get("reason"),
        "leaderboard_top": [{k: r.get(k) for k in ("model", "score", "n_clusters", "fit_time")}
                            for r in (j.get("leaderboard") or [])[:5]],
    }


def main():
    import tempfile

    scratch = Path(tempfile.mkdtemp(prefix="bench_unseen_"))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repo", default=str(Path(__file__).resolve().parents[1]), help="checkout to measure")
    ap.add_argument("--out", default=str(scratch / "results.json"), help="JSON file for every figure")
    ap.add_argument("--data", default=str(scratch / "data"), help="folder for the generated CSV files")
    ap.add_argument("--home", default=str(scratch / "home"), help="AUTOML_HOME for the runs (a fresh one)")
    ap.add_argument("--only", help="comma-separated case names to run")
    args = ap.parse_args()
    from sklearn.metrics import adjusted_rand_score

    repo = os.path.abspath(args.repo)
    data = Path(args.data)
    models = data / "models"
    if models.exists():
        shutil.rmtree(models)
    models.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, AUTOML_HOME=args.home)
    only = set(args.only.split(",")) if args.only else None
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=repo, capture_output=True, text=True).stdout.strip()
    t0 = time.perf_counter()
    subprocess.run(["uv", "run", "python", "-c", "pass"], cwd=repo, env=env, capture_output=True)
    uv_overhead = time.perf_counter() - t0
    t0 = time.perf_counter()
    subprocess.run(["uv", "run", "python", "-c", "pass"], cwd=repo, env=env, capture_output=True)
    uv_overhead = round(min(uv_overhead, time.perf_counter() - t0), 2)
    results = {"repo": repo, "commit": head, "budget": BUDGET, "uv_run_overhead_s": uv_overhead,
               "forecasting": [], "clustering": []}

    for case in forecast_cases():
        if only and case["name"] not in only:
            continue
        tc = case.get("time_col", "date")
        tr, te = case["train"].copy(), case["test"].copy()
        truth = te["y"].to_numpy(float)
        naive = seasonal_naive(tr, te, case["period"], tc)
        lgbm = lgbm_baseline(tr, te, tc, case["exog"])
        for df in (tr, te):
            if case["fmt"]:
                df[tc] = pd.to_datetime(df[tc]).dt.strftime(case["fmt"])
        train_path = data / f"{case['name']}_train.csv"
        future_path = data / f"{case['name']}_future.csv"
        truth_path = data / f"{case['name']}_truth.csv"
        tr.to_csv(train_path, index=False)
        te.drop(columns=["y"]).to_csv(future_path, index=False)
        te.to_csv(truth_path, index=False)
        out = models / case["name"]
        rec = dict(name=case["name"], rows_train=len(tr), horizon=len(te))
        rec["train"] = run(train_cmd(train_path, out, "timeseries", "y"), repo, env)
        rec["mae_seasonal_naive"] = float(np.mean(np.abs(naive - truth)))
        rec["mae_lgbm_calendar"] = float(np.mean(np.abs(lgbm - truth)))
        rec["ours_mae"] = None
        if rec["train"]["rc"] == 0:
            pred_path = data / f"{case['name']}_pred.csv"
            rec["predict"] = run(["uv", "run", "automl", "predict", str(out), str(future_path), "--out", str(pred_path)],
                                 repo, env)
            if rec["predict"]["rc"] == 0:
                pred = pd.read_csv(pred_path)
                rec["pred_rows"] = len(pred)
                rec["pred_columns"] = list(pred.columns)
                if "prediction" in pred and len(pred) == len(truth):
                    p = pd.to_numeric(pred["prediction"], errors="coerce").to_numpy(float)
                    rec["pred_nan"] = int(np.isnan(p).sum())
                    rec["ours_mae"] = float(np.nanmean(np.abs(p - truth)))
        best = min(rec["mae_seasonal_naive"], rec["mae_lgbm_calendar"])
        rec["ratio"] = None if rec["ours_mae"] is None else rec["ours_mae"] / best
        rec["summary"] = summarise_json(rec["train"]["json"])
        rec["train"].pop("json")
        results["forecasting"].append(rec)
        print(f"[fc] {case['name']}: rc={rec['train']['rc']} wall={rec['train']['wall']} ours={rec['ours_mae']} "
              f"ratio={rec['ratio']}", file=sys.stderr, flush=True)

    for case in clustering_cases():
        if only and case["name"] not in only:
            continue
        path = data / f"clu_{case['name']}.csv"
        case["X"].to_csv(path, index=False)
        out = models / f"clu_{case['name']}"
        rec = dict(name=case["name"], rows=len(case["X"]), true_k=case["k"])
        rec["kmeans_true_k_ari"] = kmeans_reference(case["X"], case["y"], case["k"], case["cat"])
        rec["train"] = run(train_cmd(path, out, "clustering"), repo, env)
        rec["ours_ari"] = None
        rec["n_clusters_found"] = None
        if rec["train"]["rc"] == 0:
            j = rec["train"]["json"] or {}
            lb = j.get("leaderboard") or []
            if lb:
                rec["n_clusters_model"] = lb[0].get("n_clusters")
            pred_path = data / f"clu_{case['name']}_pred.csv"
            rec["predict"] = run(["uv", "run", "automl", "predict", str(out), str(path), "--out", str(pred_path)],
                                 repo, env)
            if rec["predict"]["rc"] == 0:
                pred = pd.read_csv(pred_path)
                rec["pred_rows"] = len(pred)
                rec["pred_columns"] = list(pred.columns)
                if "prediction" in pred and len(pred) == len(case["y"]):
                    labels = pred["prediction"].astype(str).to_numpy()
                    rec["ours_ari"] = float(adjusted_rand_score(case["y"], labels))
                    rec["n_clusters_found"] = int(len(set(labels) - {"-1"}))
                    rec["noise_rows"] = int((labels == "-1").sum())
        rec["ratio"] = None if rec["ours_ari"] is None else rec["ours_ari"] / max(rec["kmeans_true_k_ari"], 1e-9)
        rec["summary"] = summarise_json(rec["train"]["json"])
        rec["train"].pop("json")
        results["clustering"].append(rec)
        print(f"[cl] {case['name']}: rc={rec['train']['rc']} wall={rec['train']['wall']} ari={rec['ours_ari']}",
              file=sys.stderr, flush=True)

    Path(args.out).write_text(json.dumps(results, indent=2, default=str))
    print_tables(results)


def _f(v, nd=3):
    return "-" if v is None else (f"{v:.{nd}f}" if isinstance(v, float) else str(v))


def print_tables(results):
    print(f"repo {results['repo']} @ {results['commit']}, budget {results['budget']} s, "
          f"uv run overhead ~{results['uv_run_overhead_s']} s")
    print("\nFORECASTING (MAE on the held-out horizon)")
    print(f"{'case':<20}{'wall':>7}{'rc':>4}{'ours':>10}{'snaive':>10}{'lgbm':>10}{'ratio':>7}  best / note")
    for r in results["forecasting"]:
        s = r["summary"]
        note = s.get("best") or r["train"]["stderr_tail"].splitlines()[-1][:70] if r["train"]["stderr_tail"] else s.get("best")
        print(f"{r['name']:<20}{r['train']['wall']:>7.1f}{r['train']['rc']:>4}{_f(r['ours_mae'], 2):>10}"
              f"{_f(r['mae_seasonal_naive'], 2):>10}{_f(r['mae_lgbm_calendar'], 2):>10}{_f(r['ratio'], 2):>7}  {note}")
    print("\nCLUSTERING (adjusted Rand index vs true labels)")
    print(f"{'case':<18}{'wall':>7}{'rc':>4}{'ours':>8}{'k_found':>8}{'true_k':>7}{'kmeans':>8}{'ratio':>7}  best / note")
    for r in results["clustering"]:
        s = r["summary"]
        note = s.get("best") or (r["train"]["stderr_tail"].splitlines()[-1][:70] if r["train"]["stderr_tail"] else "")
        print(f"{r['name']:<18}{r['train']['wall']:>7.1f}{r['train']['rc']:>4}{_f(r['ours_ari']):>8}"
              f"{_f(r['n_clusters_found']):>8}{r['true_k']:>7}{_f(r['kmeans_true_k_ari']):>8}{_f(r['ratio'], 2):>7}  {note}")


if __name__ == "__main__":
    main()

"""Clustering: every row gets a cluster, noise is scored, and outliers cannot dominate distances."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score, silhouette_score

from automl_core import AutoML
from automl_core.clustering import ClusterModel, search_clusterings
from automl_core.preprocess import build_preprocessor


@pytest.fixture(scope="module")
def blobs_with_scatter():
    rng = np.random.default_rng(0)
    centres = np.array([[0, 0], [6, 0], [0, 6]])
    blobs = np.vstack([c + rng.normal(scale=0.6, size=(150, 2)) for c in centres])
    scatter = rng.uniform(-4, 10, size=(120, 2))  # rows HDBSCAN calls noise
    return np.vstack([blobs, scatter])


def test_hdbscan_puts_every_row_in_a_cluster(blobs_with_scatter):
    X = blobs_with_scatter
    model = ClusterModel("hdbscan").fit(X)
    assert model.noise_share_ > 0.05  # HDBSCAN did set rows aside...
    assert -1 not in set(model.labels_) and -1 not in set(model.predict(X))  # ...but each joins its nearest cluster
    assert np.mean(model.predict(X) == model.labels_) > 0.95  # new rows are assigned as training rows were


def test_search_scores_noise_rows_too(blobs_with_scatter):
    X = blobs_with_scatter
    records = search_clusterings(X, deadline=lambda: 60.0, random_state=0)
    hdbscan = next(r for r in records if r["family"] == "hdbscan" and r["status"] == "ok")
    labels = ClusterModel("hdbscan").fit(X).labels_
    assert hdbscan["score"] == pytest.approx(silhouette_score(X, labels))
    assert hdbscan["noise_share"] > 0.05


def test_clustering_caps_standard_scores_but_supervised_models_do_not():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=300), "rare": np.r_[np.zeros(297), [50.0, 60.0, 70.0]]})
    kinds = {"a": "numeric", "rare": "numeric"}
    clustered = build_preprocessor(kinds, frame, "linear", task="clustering").fit_transform(frame)
    assert np.abs(clustered).max() == pytest.approx(3.0)
    supervised = build_preprocessor(kinds, frame, "linear", task="regression").fit_transform(frame)
    assert np.abs(supervised).max() > 9


def test_wine_cultivars_are_found_without_their_labels(wine_frame):
    model = AutoML(task="clustering", time_budget=6, random_state=0, ignore_columns=["cultivar"]).fit(wine_frame)
    assert model.best_estimator_.named_steps["model"].n_clusters_ == 3
    assert adjusted_rand_score(wine_frame["cultivar"], model.labels_) > 0.8  # HDBSCAN's noise-free rows gave 0.42

"""Clustering: several algorithms and cluster counts, chosen by silhouette on the prepared data.

k-means, Gaussian mixtures, agglomerative (Ward) and density-based (HDBSCAN) clustering are
tried for k = 2..10 where k applies. Algorithms that cannot assign new rows by themselves learn a
nearest-neighbour rule from their training labels, so every clustering model can `predict`.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable

import numpy as np
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.metrics import silhouette_score
from sklearn.utils.validation import check_is_fitted

ALGORITHMS = ("kmeans", "gmm", "agglomerative", "hdbscan")
_SILHOUETTE_SAMPLE = 3000
MIN_CLUSTER_SHARE = 0.02


class ClusterModel(ClusterMixin, BaseEstimator):
    """One clustering algorithm with its settings; `predict` assigns new rows to the learned clusters."""

    def __init__(self, algorithm: str = "kmeans", n_clusters: int = 3, random_state: int | None = 0):
        self.algorithm = algorithm
        self.n_clusters = n_clusters
        self.random_state = random_state

    def fit(self, X, y=None):
        from sklearn.cluster import HDBSCAN, AgglomerativeClustering, KMeans
        from sklearn.mixture import GaussianMixture
        from sklearn.neighbors import KNeighborsClassifier

        X = np.asarray(X, dtype=float)
        self.assigner_ = None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if self.algorithm == "kmeans":
                self.model_ = KMeans(self.n_clusters, n_init=5, random_state=self.random_state).fit(X)
                labels = self.model_.labels_
            elif self.algorithm == "gmm":
                self.model_ = GaussianMixture(self.n_clusters, n_init=2, random_state=self.random_state).fit(X)
                labels = self.model_.predict(X)
            elif self.algorithm == "agglomerative":
                self.model_ = AgglomerativeClustering(self.n_clusters, linkage="ward").fit(X)
                labels = self.model_.labels_
            elif self.algorithm == "hdbscan":
                self.model_ = HDBSCAN(min_cluster_size=max(5, len(X) // 50)).fit(X)
                labels = self.model_.labels_
            else:
                raise ValueError(f"unknown clustering algorithm {self.algorithm!r}; use one of {ALGORITHMS}")
        labels = np.asarray(labels)
        self.noise_share_ = float(np.mean(labels == -1))
        if self.algorithm in ("agglomerative", "hdbscan"):
            # Learned from the clustered rows only: every row, new or old, joins its nearest cluster,
            # so rows HDBSCAN calls noise are not a cluster of their own (-1) in what users see.
            clustered = labels != -1
            if clustered.any():
                self.assigner_ = KNeighborsClassifier(n_neighbors=min(5, int(clustered.sum()))).fit(
                    X[clustered], labels[clustered]
                )
                labels = np.where(clustered, labels, self.assigner_.predict(X))
        self.labels_ = labels
        self.n_clusters_ = int(len(set(self.labels_) - {-1}))
        return self

    def predict(self, X):
        check_is_fitted(self, "labels_")
        X = np.asarray(X, dtype=float)
        if self.assigner_ is not None:
            return self.assigner_.predict(X)
        return self.model_.predict(X)


def candidate_settings(n_rows: int) -> list[dict]:
    """Cheap first: k-means and mixtures for k = 2..10, then Ward and HDBSCAN where the data is small enough."""
    ks = range(2, min(10, max(2, n_rows // 5)) + 1)
    out = [{"algorithm": "kmeans", "n_clusters": k} for k in ks]
    out += [{"algorithm": "gmm", "n_clusters": k} for k in ks]
    if n_rows <= 5_000:  # Ward keeps a full linkage: quadratic memory
        out += [{"algorithm": "agglomerative", "n_clusters": k} for k in ks]
    if n_rows <= 20_000:
        out += [{"algorithm": "hdbscan", "n_clusters": 0}]
    return out


def search_clusterings(
    X: np.ndarray,
    *,
    deadline: Callable[[], float],
    random_state: int | None = 0,
    on_trial: Callable[[dict], None] | None = None,
) -> list[dict]:
    """Score every candidate that fits in the time left; returns flat trial records, best first."""
    X = np.asarray(X, dtype=float)
    rng = np.random.default_rng(random_state)
    sample = rng.choice(len(X), size=min(len(X), _SILHOUETTE_SAMPLE), replace=False)
    records = []
    for i, settings in enumerate(candidate_settings(len(X)), start=1):
        if deadline() <= 0.2:
            break
        start = time.perf_counter()
        record = {"trial_id": i, "family": settings["algorithm"], "params": settings, "status": "ok"}
        try:
            model = ClusterModel(random_state=random_state, **settings).fit(X)
            labels = model.labels_
            n_found = len(set(labels[sample]) - {-1})
            if n_found < 2:
                raise ValueError("found fewer than 2 clusters")
            sizes = np.bincount(labels[labels >= 0])
            smallest = int(sizes[sizes > 0].min())
            if smallest < max(3, MIN_CLUSTER_SHARE * len(X)):
                # A handful of outliers split off scores a high silhouette but is not a grouping.
                raise ValueError(f"a cluster holds only {smallest} rows")
            # Scored on every row (noise included, at its nearest cluster): a method must not look
            # better by setting its hardest rows aside.
            record["score"] = float(silhouette_score(X[sample], labels[sample]))
            record["n_clusters"] = int(model.n_clusters_)
            record["noise_share"] = model.noise_share_
        except Exception as exc:  # noqa: BLE001 - one failing setting must not end the search
            record.update(status="failed", error=f"{type(exc).__name__}: {exc}"[:300], score=None)
        record["fit_time"] = time.perf_counter() - start
        records.append(record)
        if on_trial:
            on_trial(record)
    ok = [r for r in records if r["status"] == "ok"]
    return sorted(ok, key=lambda r: -r["score"]) + [r for r in records if r["status"] != "ok"]

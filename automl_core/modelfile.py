"""A trained model as a folder (`model.joblib` + `model.json`), and predictions in the CSV contract.

The JSON beside the pickle carries everything a person or program needs without unpickling:
task, metric, classes, input schema, leaderboard, and the SHA-256 of the pickle, which is
checked before `joblib.load` so a swapped or damaged file is refused.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import AutoMLError

MODEL_FILE = "model.joblib"
META_FILE = "model.json"


def _plain(value):
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and np.isnan(value):
        return None
    return value


def library_versions() -> dict[str, str]:
    """Versions of the libraries a model file needs to load."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("scikit-learn", "lightgbm", "xgboost-cpu", "numpy", "pandas", "scipy", "joblib", "automl-workbench"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            continue
    return out


def train_summary(automl, source: str | None = None) -> dict:
    """What `automl train` prints and stores: the fit's summary plus classes and input schema."""
    summary = automl.summary()
    summary["source"] = source
    summary["classes"] = None if automl.classes_ is None else [_plain(c) for c in automl.classes_]
    summary["input_schema"] = _plain(automl.input_schema_)
    summary["profile_warnings"] = list(automl.profile_.warnings)
    summary["unlabeled_rows_dropped"] = int(getattr(automl, "unlabeled_rows_dropped_", 0))
    return _plain(summary)


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save_model_dir(automl, out: str | os.PathLike, summary: dict) -> str:
    """Write the pipeline and its JSON description; returns the folder path."""
    import io

    import joblib

    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    joblib.dump(automl.best_estimator_, buffer, compress=3)
    data = buffer.getvalue()
    _atomic_write(folder / MODEL_FILE, data)
    meta = dict(summary)
    meta["artifact"] = {"file": MODEL_FILE, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    meta["libraries"] = library_versions()
    _atomic_write(folder / META_FILE, json.dumps(_plain(meta), indent=2, default=str).encode())
    return str(folder)


def load_model_dir(folder: str | os.PathLike):
    """Load a model folder after checking the pickle's SHA-256 against `model.json`."""
    import joblib

    folder = Path(folder)
    meta_path = folder / META_FILE
    if not meta_path.is_file():
        raise AutoMLError(f"'{folder}' is not a model folder: {META_FILE} is missing")
    try:
        meta = json.loads(meta_path.read_text())
        expected = meta["artifact"]["sha256"]
    except (ValueError, KeyError) as exc:
        raise AutoMLError(f"'{meta_path}' is not a valid model description: {exc}") from exc
    model_path = folder / meta["artifact"].get("file", MODEL_FILE)
    if model_path.parent.resolve() != folder.resolve() or not model_path.is_file():
        raise AutoMLError(f"model file {model_path.name!r} is missing from '{folder}'")
    actual = file_sha256(model_path)
    if actual != expected:
        raise AutoMLError(
            f"'{model_path}' does not match its recorded SHA-256 (expected {expected[:12]}…, found {actual[:12]}…): "
            "refusing to load a file that changed after training"
        )
    return joblib.load(model_path), meta


def input_warnings(model, frame: pd.DataFrame) -> list[str]:
    """What the model could not use as written: unreadable cells, unseen labels, ignored columns."""
    cleaner = model.steps[0][1] if hasattr(model, "steps") else None
    return cleaner.reading_warnings(frame) if hasattr(cleaner, "reading_warnings") else []


def predictions_frame(model, meta: dict, frame: pd.DataFrame) -> pd.DataFrame:
    """Predictions in the CSV contract: `prediction`, plus `proba_<class>` for classification."""
    task = meta.get("task")
    classes = meta.get("classes")
    if task in ("binary", "multiclass"):
        proba = np.asarray(model.predict_proba(frame), dtype=float)
        labels = np.asarray(classes, dtype=object)
        out = pd.DataFrame({"prediction": labels[np.argmax(proba, axis=1)]})
        for j, cls in enumerate(classes):
            out[f"proba_{cls}"] = proba[:, j]
        return out
    return pd.DataFrame({"prediction": np.asarray(model.predict(frame))})

"""Train the Iris classifier deterministically and write the model with its manifest.

The model is retrained only when something that shapes it changed: the training
parameters, this module's source, or the versions of Python and the libraries that
fit and pickle it. Everything else reuses the saved file.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import logging
import platform
import sys
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import joblib
import numpy as np
from numpy.typing import NDArray
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import train_test_split

log = logging.getLogger(__name__)

MODEL_FILE = "model.joblib"
MANIFEST_FILE = "manifest.json"
MANIFEST_SCHEMA_VERSION = 1
FEATURE_NAMES = ("sepal_length", "sepal_width", "petal_length", "petal_width")
CLASS_NAMES = ("setosa", "versicolor", "virginica")
LIBRARIES = ("scikit-learn", "numpy", "scipy", "joblib")


@dataclass(frozen=True)
class TrainingConfig:
    """Everything that decides the trained model; part of the retrain fingerprint."""

    model_name: str = "iris-random-forest"
    n_estimators: int = 100
    max_depth: int | None = None
    random_state: int = 42
    test_size: float = 0.2
    split_random_state: int = 42
    estimator_params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TrainResult:
    model_path: Path
    manifest_path: Path
    manifest: dict[str, Any]
    retrained: bool


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    versions.update({name: metadata.version(name) for name in LIBRARIES})
    return versions


def fingerprint(config: TrainingConfig) -> str:
    """Hash of every input that shapes the model file's bytes."""
    inputs = {
        "config": dataclasses.asdict(config),
        "training_code": hashlib.sha256(Path(__file__).read_bytes()).hexdigest(),
        "python": f"{sys.version_info.major}.{sys.version_info.minor}",
        "libraries": {name: metadata.version(name) for name in LIBRARIES},
    }
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def training_split(config: TrainingConfig) -> tuple[NDArray[Any], NDArray[Any], NDArray[Any], NDArray[Any]]:
    """The stratified train/held-out split of Iris: x_train, x_test, y_train, y_test."""
    iris = load_iris()
    split: list[NDArray[Any]] = train_test_split(
        iris.data,
        iris.target,
        test_size=config.test_size,
        random_state=config.split_random_state,
        stratify=iris.target,
    )
    x_train, x_test, y_train, y_test = split
    return x_train, x_test, y_train, y_test


def train(config: TrainingConfig) -> tuple[RandomForestClassifier, dict[str, Any]]:
    """Fit the forest on the training split; return it with its held-out metrics."""
    x_train, x_test, y_train, y_test = training_split(config)
    model = RandomForestClassifier(
        n_estimators=config.n_estimators,
        max_depth=config.max_depth,
        random_state=config.random_state,
        n_jobs=1,
        **config.estimator_params,
    )
    model.fit(x_train, y_train)
    predicted = model.predict(x_test)
    metrics = {
        "test_accuracy": round(float(accuracy_score(y_test, predicted)), 6),
        "test_f1_macro": round(float(f1_score(y_test, predicted, average="macro")), 6),
        "train_rows": len(x_train),
        "test_rows": len(x_test),
    }
    return model, metrics


def build_manifest(
    config: TrainingConfig, model: RandomForestClassifier, metrics: dict[str, Any], model_path: Path
) -> dict[str, Any]:
    digest = sha256_of(model_path)
    return {
        "schema_version": MANIFEST_SCHEMA_VERSION,
        "name": config.model_name,
        "version": digest[:12],
        "file": model_path.name,
        "sha256": digest,
        "estimator": f"{type(model).__module__}.{type(model).__qualname__}",
        "feature_names": list(FEATURE_NAMES),
        "class_names": list(CLASS_NAMES),
        "classes": [int(label) for label in np.asarray(model.classes_)],
        "training": {
            "dataset": "sklearn.datasets.load_iris",
            "params": dataclasses.asdict(config),
        },
        "metrics": metrics,
        "libraries": library_versions(),
        "fingerprint": fingerprint(config),
    }


def read_manifest(model_dir: Path) -> dict[str, Any] | None:
    path = model_dir / MANIFEST_FILE
    if not path.is_file():
        return None
    manifest: dict[str, Any] = json.loads(path.read_text())
    return manifest


def is_up_to_date(model_dir: Path, config: TrainingConfig) -> bool:
    manifest = read_manifest(model_dir)
    model_path = model_dir / MODEL_FILE
    return (
        manifest is not None
        and manifest.get("fingerprint") == fingerprint(config)
        and model_path.is_file()
        and sha256_of(model_path) == manifest.get("sha256")
    )


def train_if_needed(model_dir: Path, config: TrainingConfig | None = None) -> TrainResult:
    """Reuse the model in `model_dir` when its fingerprint matches, else train and write it."""
    config = config or TrainingConfig()
    model_path = model_dir / MODEL_FILE
    manifest_path = model_dir / MANIFEST_FILE
    if is_up_to_date(model_dir, config):
        manifest = read_manifest(model_dir)
        assert manifest is not None
        log.info("model %s is up to date in %s, not retraining", manifest["version"], model_dir)
        return TrainResult(model_path, manifest_path, manifest, retrained=False)

    log.info("training %s (%d trees, random_state=%d)", config.model_name, config.n_estimators, config.random_state)
    model, metrics = train(config)
    model_dir.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, model_path)
    manifest = build_manifest(config, model, metrics, model_path)
    manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    log.info(
        "trained model %s: test accuracy %.4f on %d held-out rows; wrote %s",
        manifest["version"],
        metrics["test_accuracy"],
        metrics["test_rows"],
        model_dir,
    )
    return TrainResult(model_path, manifest_path, manifest, retrained=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, required=True, help="directory for the model and its manifest")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    train_if_needed(args.out)


if __name__ == "__main__":
    main()

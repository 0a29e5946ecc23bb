"""The build step's training: deterministic, reused when nothing changed, retrained when something did."""

from __future__ import annotations

import hashlib
import json
from importlib import metadata
from pathlib import Path

import joblib
import pytest

from build import train
from build.train import MANIFEST_FILE, MODEL_FILE, train_if_needed
from tests.unit.conftest import tiny_spec

TINY = tiny_spec(n_estimators=3)


def test_training_is_byte_for_byte_deterministic(tmp_path: Path) -> None:
    first = train_if_needed(tmp_path / "a")
    second = train_if_needed(tmp_path / "b")

    assert first.model_path.read_bytes() == second.model_path.read_bytes()
    assert first.manifest_path.read_bytes() == second.manifest_path.read_bytes()


def test_manifest_describes_the_model(training_dir: Path) -> None:
    manifest = json.loads((training_dir / MANIFEST_FILE).read_text())
    digest = hashlib.sha256((training_dir / MODEL_FILE).read_bytes()).hexdigest()

    assert manifest["sha256"] == digest
    assert manifest["version"] == digest[:12]
    assert manifest["name"] == "iris-random-forest"
    assert manifest["file"] == MODEL_FILE
    assert manifest["estimator"] == "sklearn.ensemble._forest.RandomForestClassifier"
    assert [f["name"] for f in manifest["features"]] == ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    assert manifest["class_names"] == ["setosa", "versicolor", "virginica"]
    assert manifest["classes"] == [0, 1, 2]
    assert manifest["training"]["params"]["n_estimators"] == 100
    assert manifest["metrics"]["test_rows"] == 30
    assert manifest["metrics"]["train_rows"] == 120
    assert 0.85 <= manifest["metrics"]["test_accuracy"] <= 1.0
    for library in ("scikit-learn", "numpy", "scipy", "joblib"):
        assert manifest["libraries"][library] == metadata.version(library)


def test_trained_model_answers_the_seed_example(training_dir: Path) -> None:
    model = joblib.load(training_dir / MODEL_FILE)

    assert model.predict([[6.1, 2.8, 4.7, 1.2]]).tolist() == [1]


def test_unchanged_inputs_reuse_the_saved_model(tmp_path: Path) -> None:
    first = train_if_needed(tmp_path, TINY)
    written = first.model_path.stat().st_mtime_ns

    second = train_if_needed(tmp_path, TINY)

    assert first.retrained
    assert not second.retrained
    assert second.model_path.stat().st_mtime_ns == written
    assert second.manifest == first.manifest


def test_changed_parameters_retrain(tmp_path: Path) -> None:
    first = train_if_needed(tmp_path, TINY)

    second = train_if_needed(tmp_path, tiny_spec(n_estimators=4))

    assert second.retrained
    assert second.manifest["fingerprint"] != first.manifest["fingerprint"]
    assert second.manifest["sha256"] != first.manifest["sha256"]


def test_changed_library_version_retrains(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    train_if_needed(tmp_path, TINY)
    real_version = metadata.version
    monkeypatch.setattr(
        train.metadata, "version", lambda name: "0.0.1" if name == "scikit-learn" else real_version(name)
    )

    assert train_if_needed(tmp_path, TINY).retrained


def test_changed_training_code_retrains(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    train_if_needed(tmp_path, TINY)
    edited = tmp_path / "train_edited.py"
    edited.write_text(Path(train.__file__).read_text() + "\n# a change to the training code\n")
    monkeypatch.setattr(train, "__file__", str(edited))

    assert train_if_needed(tmp_path, TINY).retrained


def test_tampered_model_file_retrains(tmp_path: Path) -> None:
    first = train_if_needed(tmp_path, TINY)
    first.model_path.write_bytes(first.model_path.read_bytes() + b"\0")

    second = train_if_needed(tmp_path, TINY)

    assert second.retrained
    assert hashlib.sha256(second.model_path.read_bytes()).hexdigest() == first.manifest["sha256"]


def test_cli_trains_into_the_given_directory(tmp_path: Path) -> None:
    train.main(["--out", str(tmp_path)])

    assert (tmp_path / MODEL_FILE).is_file()
    assert json.loads((tmp_path / MANIFEST_FILE).read_text())["name"] == "iris-random-forest"

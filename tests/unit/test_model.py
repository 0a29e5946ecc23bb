"""Loading the model: verified against its manifest, or refused with a clear reason."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import joblib
import numpy as np
import pytest
import sklearn.base
from sklearn.datasets import load_iris

from serving.errors import ModelLoadError
from serving.model import load_model


def rewrite_manifest(model_dir: Path, **changes: object) -> None:
    path = model_dir / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest.update(changes)
    path.write_text(json.dumps(manifest))


def test_loads_and_predicts_like_the_estimator(tiny_model_dir: Path) -> None:
    model = load_model(tiny_model_dir)
    rows = load_iris().data

    assert model.manifest.name == "iris-random-forest"
    assert model.n_features == 4
    predicted = model.predict(rows.tolist(), probabilities=True)
    estimator = joblib.load(tiny_model_dir / "model.joblib")
    assert predicted.labels == estimator.predict(rows).tolist()
    assert predicted.probabilities is not None
    assert predicted.probabilities.tobytes() == estimator.predict_proba(rows).tobytes()
    assert [model.class_name(label) for label in (0, 1, 2)] == ["setosa", "versicolor", "virginica"]


def test_missing_manifest(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match=r"model manifest not found at .*manifest\.json"):
        load_model(tmp_path)


def test_missing_model_file(tiny_model_dir: Path) -> None:
    (tiny_model_dir / "model.joblib").unlink()

    with pytest.raises(ModelLoadError, match=r"model file not found at .*model\.joblib"):
        load_model(tiny_model_dir)


def test_checksum_mismatch_is_refused_before_unpickling(tiny_model_dir: Path) -> None:
    path = tiny_model_dir / "model.joblib"
    path.write_bytes(b"not a pickle, never to be unpickled")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()

    with pytest.raises(ModelLoadError, match=f"has sha256 {digest}, its manifest expects"):
        load_model(tiny_model_dir)


def test_invalid_manifest(tiny_model_dir: Path) -> None:
    (tiny_model_dir / "manifest.json").write_text('{"name": "iris"}')

    manifest = re.escape(str(tiny_model_dir / "manifest.json"))
    with pytest.raises(
        ModelLoadError,
        match=rf"^model manifest {manifest} is invalid: schema_version: Field required; version: Field required; "
        r".*; fingerprint: Field required$",
    ):
        load_model(tiny_model_dir)


def test_unsupported_manifest_schema(tiny_model_dir: Path) -> None:
    rewrite_manifest(tiny_model_dir, schema_version=1)

    with pytest.raises(ModelLoadError, match="is invalid: schema_version: Input should be 2"):
        load_model(tiny_model_dir)


def test_model_from_another_scikit_learn_version_is_refused(
    tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tiny_model_dir / "model.joblib"
    estimator = joblib.load(path)
    monkeypatch.setattr(sklearn.base, "__version__", "1.0.2")
    joblib.dump(estimator, path)
    monkeypatch.undo()
    rewrite_manifest(tiny_model_dir, sha256=hashlib.sha256(path.read_bytes()).hexdigest())

    with pytest.raises(
        ModelLoadError, match=f"pickled with scikit-learn 1.0.2 but this function runs {sklearn.__version__}"
    ):
        load_model(tiny_model_dir)


def test_manifest_features_must_match_the_estimator(tiny_model_dir: Path) -> None:
    manifest = json.loads((tiny_model_dir / "manifest.json").read_text())
    rewrite_manifest(tiny_model_dir, features=manifest["features"][:3], example=manifest["example"][:3])

    with pytest.raises(ModelLoadError, match="records n_features 4, its manifest says 3"):
        load_model(tiny_model_dir)


def test_manifest_classes_must_match_the_estimator(tiny_model_dir: Path) -> None:
    rewrite_manifest(tiny_model_dir, classes=[0, 1], class_names=["setosa", "versicolor"])

    with pytest.raises(ModelLoadError, match=r"records classes \[0, 1, 2\], its manifest says \[0, 1\]"):
        load_model(tiny_model_dir)


def test_predict_returns_python_ints(tiny_model_dir: Path) -> None:
    predictions = load_model(tiny_model_dir).predict(np.zeros((3, 4)))

    assert all(type(label) is int for label in predictions.labels)
    assert predictions.probabilities is None

"""The training profile the build writes into the manifest (build/train.py), `capture = false`,
and the drift function's package (build/drift_package.py)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from build import drift_package
from build.dataset import training_table
from build.spec import load_spec
from build.train import check_rows, split_rows, train_if_needed
from serving.errors import ModelLoadError
from serving.manifest import Manifest
from serving.model import load_model
from tests.unit.conftest import trained

MODELS_DIR = Path(__file__).resolve().parents[3] / "models"


def test_the_iris_manifest_profiles_the_training_rows_and_the_held_out_predictions(training_dir: Path) -> None:
    manifest = Manifest.model_validate_json((training_dir / "manifest.json").read_bytes())
    profile = manifest.profile
    assert profile is not None
    spec = load_spec(MODELS_DIR / "iris.toml")
    rows, _ = split_rows(spec)
    assert (profile.source, profile.rows, profile.prediction_rows) == ("training", len(rows.train), len(rows.held_out))
    assert set(profile.features) == set(manifest.feature_names)
    petal_length = profile.features["petal_length"]
    assert petal_length.type == "number"
    assert (petal_length.min, petal_length.max) == (rows.train[:, 2].min(), rows.train[:, 2].max())
    assert 5 <= len(petal_length.edges) <= 9
    assert profile.predictions.type == "classes"
    assert math.isclose(sum(profile.predictions.frequencies), 1.0)


def penguins_without_sex(tmp_path: Path) -> Path:
    text = (MODELS_DIR / "penguins.toml").read_text()
    text = text.replace('categories = ["female", "male"]', 'categories = ["female", "male"]\ncapture = false')
    text = text.replace('data = "data/', f'data = "{MODELS_DIR}/data/').replace(
        'estimator = "penguins.py', f'estimator = "{MODELS_DIR}/penguins.py'
    )
    path = tmp_path / "penguins.toml"
    path.write_text(text)
    return path


def test_a_feature_marked_capture_false_is_left_out_of_the_profile_but_not_the_request_schema(tmp_path: Path) -> None:
    spec = load_spec(penguins_without_sex(tmp_path))
    assert spec.not_captured == ["sex"]

    manifest = train_if_needed(tmp_path / "model", spec).manifest

    assert manifest["profile"]["not_captured"] == ["sex"]
    assert "sex" not in manifest["profile"]["features"]
    assert manifest["features"][-1] == {
        "name": "sex",
        "type": "category",
        "categories": ["female", "male"],
        "allow_missing": True,
    }
    island = manifest["profile"]["features"]["island"]
    assert set(island["frequencies"]) == {"Biscoe", "Dream", "Torgersen"}
    table = training_table(spec)
    rows = check_rows(spec)
    assert manifest["profile"]["rows"] == len(table.rows) - len(rows.held_out)
    assert 0 < manifest["profile"]["features"]["bill_length_mm"]["missing_rate"] < 0.05
    assert Manifest.model_validate(manifest).captured_features[-1].name == "body_mass_g"


def test_a_regressors_predictions_are_profiled_by_their_deciles() -> None:
    # The model the build trains (the tests' shared copy): its manifest is what is read.
    manifest = json.loads((trained(load_spec(MODELS_DIR / "diabetes.toml")) / "manifest.json").read_text())
    predictions = manifest["profile"]["predictions"]
    assert predictions["type"] == "number"
    assert len(predictions["edges"]) == 9
    assert predictions["min"] < predictions["edges"][0] < predictions["edges"][-1] < predictions["max"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda profile: profile["features"].pop("petal_width"), "the profile describes features"),
        (lambda profile: profile.update(not_captured=["colour"]), "not_captured names unknown features"),
        (lambda profile: profile["predictions"]["frequencies"].pop(), "prediction profile has 2 classes, the model 3"),
    ],
)
def test_a_manifest_whose_profile_disagrees_with_it_is_refused_at_load(
    tiny_model_dir: Path, change: Any, message: str
) -> None:
    path = tiny_model_dir / "manifest.json"
    manifest = json.loads(path.read_text())
    change(manifest["profile"])
    if message.startswith("prediction"):
        frequencies = manifest["profile"]["predictions"]["frequencies"]
        frequencies[-1] = round(1 - sum(frequencies[:-1]), 10)
    path.write_text(json.dumps(manifest))
    with pytest.raises(ModelLoadError, match=message):
        load_model(tiny_model_dir)


def test_the_drift_functions_package_has_its_code_the_manifest_and_the_pinned_numpy_and_pydantic(
    training_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    installed: list[str] = []
    monkeypatch.setattr(
        drift_package,
        "install_dependencies",
        lambda requirements, target, architecture: installed.extend(requirements.read_text().split()),
    )
    monkeypatch.setattr(drift_package, "model_cache_dir", lambda spec: training_dir)
    target = tmp_path / "DriftFunction"

    drift_package.build_drift_package(target, "x86_64", MODELS_DIR / "iris.toml")

    files = sorted(path.relative_to(target).as_posix() for path in target.rglob("*.py"))
    assert files == [
        "capture_objects.py",
        "scheduled.py",
        "serving/__init__.py",
        "serving/bundle.py",
        "serving/capture.py",
        "serving/codecs/__init__.py",
        "serving/codecs/base.py",
        "serving/codecs/category.py",
        "serving/codecs/number.py",
        "serving/config.py",
        "serving/errors.py",
        "serving/manifest.py",
        "serving/profile.py",
    ]
    # Its own modules are all it needs of the project: imported in a clean process from the
    # package alone (numpy and pydantic from this environment, as the package installs them).
    imported = subprocess.run(
        [sys.executable, "-c", "import scheduled; scheduled.load_manifest()"],
        cwd=target,
        env={"PATH": os.environ["PATH"], "PYTHONPATH": str(target)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert imported.returncode == 0, imported.stderr
    assert (target / "manifest.json").read_bytes() == (training_dir / "manifest.json").read_bytes()
    pins = (Path(__file__).resolve().parents[3] / "functions" / "predict" / "requirements.txt").read_text()
    assert installed
    assert all(pin in pins for pin in installed)
    assert {pin.split("==")[0] for pin in installed} >= {"numpy", "pydantic"}
    assert not any(pin.startswith(("scikit-learn", "fastapi", "scipy")) for pin in installed)

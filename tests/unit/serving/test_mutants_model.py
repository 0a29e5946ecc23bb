"""Loading the model, where `make mutate` found mutants no test noticed: a compiled model that
carries a pickle, a manifest problem deep in a feature, and what the load logs."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import joblib
import numpy as np
import pytest
import sklearn.base

from build import DEFAULT_SPEC
from build.bake import COMPILED_FILE, PACKAGE_MODEL_DIR, bake_model
from build.spec import load_spec
from serving.errors import ModelLoadError
from serving.manifest import COMPILED
from serving.model import load_model
from tests.unit.conftest import LogRecords

SPEC = load_spec(DEFAULT_SPEC)


class RunsCodeWhenUnpickled:
    """Unpickling this calls Path.touch on `marker`: proof that loading ran code from the file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[Path]]:
        return Path.touch, (self.marker,)


@pytest.fixture(scope="module")
def compiled_package(training_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    package = tmp_path_factory.mktemp("compiled")
    bake_model(package, COMPILED, training_dir, SPEC)
    return package / PACKAGE_MODEL_DIR


@pytest.fixture
def compiled_model_dir(compiled_package: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(compiled_package, tmp_path / "model"))


def pin_model_file(model_dir: Path, payload: bytes) -> None:
    """Replace the compiled file and its sha256 in the manifest, so only the load's own checks stand."""
    (model_dir / COMPILED_FILE).write_bytes(payload)
    manifest = json.loads((model_dir / "manifest.json").read_text())
    manifest["engine"]["sha256"] = hashlib.sha256(payload).hexdigest()
    (model_dir / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize("replaced", ["class_names", "feature_names", "leaf_values"])
def test_a_compiled_model_carrying_a_pickle_is_refused_without_running_it(
    compiled_model_dir: Path, tmp_path: Path, replaced: str
) -> None:
    marker = tmp_path / "code-ran"
    with np.load(compiled_model_dir / COMPILED_FILE, allow_pickle=False) as stored:
        arrays = {name: stored[name] for name in stored.files}
    arrays[replaced] = np.array([RunsCodeWhenUnpickled(marker)], dtype=object)
    buffer = io.BytesIO()
    np.savez(buffer, allow_pickle=True, **arrays)
    pin_model_file(compiled_model_dir, buffer.getvalue())

    with pytest.raises(ModelLoadError, match=r"model\.npz cannot be read: .*allow_pickle=False"):
        load_model(compiled_model_dir)
    assert not marker.exists()


def test_a_problem_inside_a_feature_is_named_by_its_dotted_path(tiny_model_dir: Path) -> None:
    path = tiny_model_dir / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["features"][2]["name"] = "petal length"
    manifest["features"][3]["type"] = "text"
    path.write_text(json.dumps(manifest))

    with pytest.raises(ModelLoadError) as refused:
        load_model(tiny_model_dir)
    message = str(refused.value)
    assert "is invalid: features.2.name: String should match pattern" in message
    assert "; features.3.type: Input should be 'number' or 'category'" in message


def test_a_renamed_compiled_feature_is_refused_naming_both_lists(compiled_model_dir: Path) -> None:
    path = compiled_model_dir / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["features"][0]["name"] = "renamed"
    path.write_text(json.dumps(manifest))

    with pytest.raises(ModelLoadError) as refused:
        load_model(compiled_model_dir)
    assert str(refused.value).startswith(
        f"model {compiled_model_dir / COMPILED_FILE} records feature_names ['{SPEC.feature_names[0]}', "
    )
    assert f"its manifest says ['renamed', '{SPEC.feature_names[1]}'" in str(refused.value)


@pytest.mark.parametrize(("engine", "kind"), [("scikit-learn", None), (COMPILED, "forest")])
def test_the_load_is_logged_with_the_model_engine_and_duration(
    tiny_model_dir: Path,
    compiled_model_dir: Path,
    log_records: LogRecords,
    monkeypatch: pytest.MonkeyPatch,
    engine: str,
    kind: str | None,
) -> None:
    model_dir = compiled_model_dir if engine == COMPILED else tiny_model_dir
    source = model_dir / (COMPILED_FILE if engine == COMPILED else "model.joblib")
    # 12.3456 ms between the two clock readings: rounded to 12.3, not 12.35 or 12.4.
    clock = iter([100.0, 100.0123456])
    monkeypatch.setattr("serving.model.time", SimpleNamespace(perf_counter=lambda: next(clock)))

    load_model(model_dir)

    [record] = [r for r in log_records() if r["message"] == "model loaded"]
    assert record["model_name"] == SPEC.name
    assert record["engine"] == engine
    assert record.get("engine_kind") == kind
    assert record["load_ms"] == 12.3
    if engine != COMPILED:
        # The version is the first 12 hex digits of the trained model file's sha256.
        assert record["model_version"] == hashlib.sha256(source.read_bytes()).hexdigest()[:12]


def test_a_model_file_that_fails_to_unpickle_is_refused_naming_the_error(tiny_model_dir: Path) -> None:
    path = tiny_model_dir / "model.joblib"
    payload = b"\x80\x05not a pickle at all"
    path.write_bytes(payload)
    manifest = json.loads((tiny_model_dir / "manifest.json").read_text())
    manifest["sha256"] = hashlib.sha256(payload).hexdigest()
    (tiny_model_dir / "manifest.json").write_text(json.dumps(manifest))

    with pytest.raises(ModelLoadError, match=rf"^model {path} cannot be unpickled: \w+Error\("):
        load_model(tiny_model_dir)


def test_a_model_from_another_scikit_learn_version_is_refused_naming_its_file(
    tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tiny_model_dir / "model.joblib"
    estimator = joblib.load(path)
    monkeypatch.setattr(sklearn.base, "__version__", "1.0.2")
    joblib.dump(estimator, path)
    monkeypatch.undo()
    manifest = json.loads((tiny_model_dir / "manifest.json").read_text())
    manifest["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    (tiny_model_dir / "manifest.json").write_text(json.dumps(manifest))

    with pytest.raises(ModelLoadError, match=rf"^model {path} was pickled with scikit-learn 1\.0\.2"):
        load_model(tiny_model_dir)


def test_a_compiled_forest_gives_labels_and_probabilities_from_one_evaluation(compiled_model_dir: Path) -> None:
    model = load_model(compiled_model_dir)
    calls = []
    predict_proba = model.engine.predict_proba

    def counted(rows: np.ndarray) -> np.ndarray:
        calls.append(len(rows))
        return predict_proba(rows)

    model.engine.predict = lambda rows: pytest.fail("a forest's labels are the argmax of its probabilities")
    model.engine.predict_proba = counted
    rows = np.array([[6.1, 2.8, 4.7, 1.2], [5.1, 3.5, 1.4, 0.2]])

    predicted = model.predict(rows, probabilities=True)

    assert calls == [2]
    assert predicted.labels == [1, 0]

"""Loading the model: verified against its manifest, or refused with a clear reason."""

from __future__ import annotations

import hashlib
import importlib
import io
import itertools
import json
import re
import shutil
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import joblib
import numpy as np
import pytest
import sklearn.base
from sklearn.datasets import load_iris

from build import DEFAULT_SPEC
from build.bake import COMPILED_FILE
from build.engines.base import serialize
from build.spec import load_spec
from build.train import MODEL_FILE
from serving.config import PACKAGE_MODEL_DIR
from serving.errors import ModelLoadError
from serving.manifest import COMPILED
from serving.model import load_model
from tests.unit.conftest import LogRecords, baked


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

    expected = f"pickled with scikit-learn 1.0.2 but this function runs {sklearn.__version__}; rebuild the package"
    with pytest.raises(ModelLoadError, match=re.escape(expected) + "$"):
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


# The model checks itself: a built model directory, tampered with in every way generated below, stops the function
# from starting with the structured "refusing to start" line, never a bare traceback and never wrong answers. The
# model file's sha256 is updated after each tampering, so what refuses it is the check of the file's contents and of
# the manifest against them.


Arrays = dict[str, np.ndarray]
FEATURE_NAMES = load_spec(DEFAULT_SPEC).feature_names
RETYPED = {"i": np.float64, "f": np.float32, "U": np.bytes_, "b": np.int8}


def refusal(model_dir: Path, monkeypatch: pytest.MonkeyPatch, log_records: LogRecords) -> str:
    """Start the function on `model_dir`; assert it refuses with one structured line; return the reason logged."""

    def refusals() -> list[dict[str, object]]:
        return [r for r in log_records() if str(r["message"]).startswith("refusing to start")]

    before = len(refusals())
    monkeypatch.setenv("MODEL_DIR", str(model_dir))
    monkeypatch.delitem(sys.modules, "app", raising=False)

    with pytest.raises(ModelLoadError):
        importlib.import_module("app")

    monkeypatch.delitem(sys.modules, "app", raising=False)
    assert len(refusals()) == before + 1
    record = refusals()[-1]
    assert record["level"] == "ERROR"
    return str(record["exception"])


def edit_manifest(model_dir: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    path = model_dir / "manifest.json"
    manifest = json.loads(path.read_text())
    edit(manifest)
    path.write_text(json.dumps(manifest))


def replace_model_file(model_dir: Path, payload: bytes) -> None:
    """Write a new model file and pin its sha256 in the manifest, as a careless rebuild would."""
    manifest = json.loads((model_dir / "manifest.json").read_text())
    engine = manifest.get("engine") or {"file": manifest["file"]}
    (model_dir / engine["file"]).write_bytes(payload)
    digest = hashlib.sha256(payload).hexdigest()
    if manifest.get("engine"):
        manifest["engine"]["sha256"] = digest
    else:
        manifest["sha256"] = digest
    (model_dir / "manifest.json").write_text(json.dumps(manifest))


@pytest.fixture
def model_dir(iris_model_dir: Path, tmp_path: Path) -> Path:
    """A copy of the built model directory, once per engine, to tamper with."""
    return Path(shutil.copytree(iris_model_dir, tmp_path / "model"))


@pytest.fixture(scope="module")
def compiled_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return baked(load_spec(DEFAULT_SPEC), COMPILED, tmp_path_factory) / PACKAGE_MODEL_DIR


@pytest.fixture
def compiled_model_dir(compiled_package: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(compiled_package, tmp_path / "model"))


@pytest.fixture(scope="module")
def compiled_arrays(compiled_package: Path) -> Arrays:
    with np.load(compiled_package / COMPILED_FILE, allow_pickle=False) as stored:
        return {name: stored[name] for name in stored.files}


def _retype(array: np.ndarray) -> np.ndarray:
    if array.dtype.kind == "u":
        return array.astype(f"i{array.dtype.itemsize}")
    return array.astype(RETYPED[array.dtype.kind])


def _drop(name: str, arrays: Arrays) -> None:
    del arrays[name]


def _change_type(name: str, arrays: Arrays) -> None:
    arrays[name] = _retype(arrays[name])


def _truncate(name: str, arrays: Arrays) -> None:
    arrays[name] = arrays[name][:-1]


def _poison(name: str, value: float, arrays: Arrays) -> None:
    arrays[name].flat[0] = value


def generated_tamperings(arrays: Arrays) -> dict[str, Callable[[Arrays], None]]:
    """Every array dropped and retyped; every non-scalar one truncated; every float one given a NaN
    and an infinity."""
    tamperings: dict[str, Callable[[Arrays], None]] = {}
    for name, array in arrays.items():
        tamperings[f"{name}: dropped"] = partial(_drop, name)
        # A float32 array retyped to float32 is unchanged, and a float scalar (a link's parameter)
        # means the same in either width.
        if _retype(array).dtype != array.dtype and not (array.dtype.kind == "f" and array.ndim == 0):
            tamperings[f"{name}: retyped"] = partial(_change_type, name)
        if array.ndim and array.size:
            tamperings[f"{name}: truncated"] = partial(_truncate, name)
        if array.dtype.kind == "f" and array.size:
            tamperings[f"{name}: nan"] = partial(_poison, name, np.nan)
            # An infinite threshold is a split every finite value passes one way: valid, if useless.
            if name != "threshold":
                tamperings[f"{name}: inf"] = partial(_poison, name, np.inf)
    return tamperings


# What no single-array edit above reaches: counts, order, ranges, extra arrays; with the reason given.
TAMPERINGS_BY_HAND: dict[str, tuple[Callable[[Arrays], None], str]] = {
    "no-trees": (
        lambda a: a.update(node_offsets=a["node_offsets"][:1], leaf_offsets=a["leaf_offsets"][:1]),
        "an ensemble needs at least one tree",
    ),
    "huge-n-features": (lambda a: a.update(n_features=np.array(10**12)), "n_features 1000000000000 must be from 1"),
    "unknown-kind": (lambda a: a.update(kind=np.array("ranker")), "kind 'ranker' is not one of"),
    "offsets-shifted": (lambda a: a.update(leaf_offsets=a["leaf_offsets"] + 1), "leaf_offsets must be"),
    "offsets-reversed": (lambda a: a.update(leaf_offsets=a["leaf_offsets"][::-1].copy()), "leaf_offsets must be"),
    "children-cycle": (
        lambda a: a.update(children=np.where(a["children"] > 0, 0, a["children"]).astype(np.int32)),
        "children holds a node or leaf outside its tree, or a node before its parent",
    ),
    "feature-out-of-range": (lambda a: a.update(feature=np.full_like(a["feature"], 7)), "feature holds a column"),
    "duplicate-classes": (lambda a: a.update(classes=np.zeros_like(a["classes"])), "classes must be unique"),
    "unknown-link": (lambda a: a.update(link=np.array("tanh")), "link 'tanh' is not one of"),
    "old-format": (lambda a: a.update(format_version=np.array(0)), "compiled tree ensemble format 0, expected 1"),
}


@pytest.mark.slow
def test_every_generated_tampering_of_the_compiled_model_refuses_to_start(
    compiled_arrays: Arrays, compiled_model_dir: Path, monkeypatch: pytest.MonkeyPatch, log_records: LogRecords
) -> None:
    tamperings = generated_tamperings(compiled_arrays)
    assert len(tamperings) > 2 * len(compiled_arrays)
    for name, tamper in tamperings.items():
        arrays = {key: value.copy() for key, value in compiled_arrays.items()}
        tamper(arrays)
        replace_model_file(compiled_model_dir, serialize(arrays))

        try:
            reason = refusal(compiled_model_dir, monkeypatch, log_records)
        except BaseException as failure:
            raise AssertionError(f"tampering {name!r} was not refused") from failure
        assert "cannot be read" in reason or "records" in reason, (name, reason)


@pytest.mark.parametrize("name", sorted(TAMPERINGS_BY_HAND))
def test_inconsistent_compiled_models_refuse_to_start(
    name: str,
    compiled_arrays: Arrays,
    compiled_model_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    log_records: LogRecords,
) -> None:
    tamper, reason = TAMPERINGS_BY_HAND[name]
    arrays = {key: value.copy() for key, value in compiled_arrays.items()}
    tamper(arrays)
    replace_model_file(compiled_model_dir, serialize(arrays))

    assert reason in refusal(compiled_model_dir, monkeypatch, log_records)


@pytest.mark.parametrize("kept", [0.0, 0.1, 0.5, 0.9, 0.999])
def test_a_model_file_that_is_not_a_whole_archive_refuses_to_start(
    kept: float, model_dir: Path, monkeypatch: pytest.MonkeyPatch, log_records: LogRecords
) -> None:
    manifest = json.loads((model_dir / "manifest.json").read_text())
    payload = (model_dir / manifest["engine"]["file"]).read_bytes()
    replace_model_file(model_dir, payload[: int(len(payload) * kept)] or b"not a zip")

    assert "cannot" in refusal(model_dir, monkeypatch, log_records)


@pytest.mark.parametrize("order", list(itertools.permutations(range(4)))[1:])
def test_reordered_feature_names_refuse_to_start(
    order: tuple[int, ...], compiled_model_dir: Path, monkeypatch: pytest.MonkeyPatch, log_records: LogRecords
) -> None:
    edit_manifest(compiled_model_dir, lambda m: m.update(features=[m["features"][i] for i in order]))

    assert "records feature_names ['sepal_length'" in refusal(compiled_model_dir, monkeypatch, log_records)


@pytest.mark.parametrize("order", list(itertools.permutations(range(4)))[1:])
def test_an_estimator_fitted_with_feature_names_checks_their_order(
    order: tuple[int, ...], tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch, log_records: LogRecords
) -> None:
    estimator = joblib.load(tiny_model_dir / MODEL_FILE)
    estimator.feature_names_in_ = np.array(FEATURE_NAMES, dtype=object)
    buffer = io.BytesIO()
    joblib.dump(estimator, buffer)
    replace_model_file(tiny_model_dir, buffer.getvalue())
    edit_manifest(tiny_model_dir, lambda m: m.update(features=[m["features"][i] for i in order]))

    assert "records feature_names ['sepal_length'" in refusal(tiny_model_dir, monkeypatch, log_records)


@pytest.mark.parametrize("kept", [0, 1, 2])
def test_truncated_class_names_refuse_to_start(
    kept: int, model_dir: Path, monkeypatch: pytest.MonkeyPatch, log_records: LogRecords
) -> None:
    edit_manifest(model_dir, lambda m: m.update(class_names=m["class_names"][:kept]))

    assert "class" in refusal(model_dir, monkeypatch, log_records)


# Pickle-free loading seen failing: a compiled model file carrying a pickled object, its sha256 pinned in the manifest
# (someone who can write the package), must be refused without running it.


class RunsCodeWhenUnpickled:
    """Unpickling this writes a file: the proof that loading ran code from the model file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return exec, (f"import pathlib; pathlib.Path({str(self.marker)!r}).write_text('ran')",)


@pytest.mark.parametrize("offset", [0, 1000, -1])
def test_a_model_file_with_one_byte_changed_is_refused_whichever_engine_serves_it(
    iris_model_dir: Path, tmp_path: Path, offset: int
) -> None:
    """The sha256 in the manifest guards every engine's file, the compiled one too: one byte
    flipped anywhere in it, and the function refuses to start, naming both digests."""
    model_dir = tmp_path / "model"
    shutil.copytree(iris_model_dir, model_dir)
    engine = json.loads((model_dir / "manifest.json").read_text())["engine"]
    path = model_dir / engine["file"]
    payload = bytearray(path.read_bytes())
    payload[offset] ^= 0x01
    path.write_bytes(bytes(payload))
    digest = hashlib.sha256(payload).hexdigest()

    expected = f"model file {path} has sha256 {digest}, its manifest expects {engine['sha256']}"
    with pytest.raises(ModelLoadError, match=f"^{re.escape(expected)}$"):
        load_model(model_dir)


# Loading the model at its edges: a compiled model that carries a pickle, a manifest problem deep in a feature, and
# what the load logs.


SPEC = load_spec(DEFAULT_SPEC)


def pin_model_file(model_dir: Path, payload: bytes) -> None:
    """Replace the compiled file and its sha256 in the manifest, so only the load's own checks stand."""
    (model_dir / COMPILED_FILE).write_bytes(payload)
    manifest = json.loads((model_dir / "manifest.json").read_text())
    manifest["engine"]["sha256"] = hashlib.sha256(payload).hexdigest()
    (model_dir / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize("replaced", ["an_extra_array", "kind", "class_names", "feature_names", "leaf_values"])
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

    with pytest.raises(
        ModelLoadError, match=r"model\.npz cannot be read: Object arrays cannot be loaded when allow_pickle=False"
    ):
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


def test_a_profile_problem_is_reported_whole_up_to_the_logged_length(tiny_model_dir: Path) -> None:
    """The profile's problem names what is wrong; a long one (here many unknown names) is not cut
    to a quoted value's length."""
    path = tiny_model_dir / "manifest.json"
    manifest = json.loads(path.read_text())
    unknown = [f"feature_{index}" for index in range(12)]
    manifest["profile"]["not_captured"] = unknown
    path.write_text(json.dumps(manifest))

    with pytest.raises(ModelLoadError) as raised:
        load_model(tiny_model_dir)

    assert str(raised.value).endswith(f"is invalid: profile: profile.not_captured names unknown features {unknown}")

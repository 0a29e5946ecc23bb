"""The model checks itself: a built model directory, tampered with in every way generated below,
stops the function from starting with the structured "refusing to start" line, never a bare
traceback and never wrong answers. The model file's sha256 is updated after each tampering, so
what refuses it is the check of the file's contents and of the manifest against them."""

from __future__ import annotations

import hashlib
import importlib
import io
import itertools
import json
import shutil
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest

from build import DEFAULT_SPEC
from build.bake import COMPILED_FILE, bake_model
from build.engines.base import serialize
from build.spec import load_spec
from build.train import MODEL_FILE
from serving.config import PACKAGE_MODEL_DIR
from serving.errors import ModelLoadError
from serving.manifest import COMPILED
from tests.unit.conftest import LogRecords

Arrays = dict[str, np.ndarray]
FEATURE_NAMES = load_spec(DEFAULT_SPEC).feature_names
RETYPED = {"i": np.float64, "f": np.float32, "U": np.bytes_}


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
def compiled_package(training_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    package = tmp_path_factory.mktemp("compiled")
    bake_model(package, COMPILED, training_dir, load_spec(DEFAULT_SPEC))
    return package / PACKAGE_MODEL_DIR


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
        tamperings[f"{name}: retyped"] = partial(_change_type, name)
        if array.ndim and array.size:
            tamperings[f"{name}: truncated"] = partial(_truncate, name)
        if array.dtype.kind == "f" and array.size:
            tamperings[f"{name}: nan"] = partial(_poison, name, np.nan)
            tamperings[f"{name}: inf"] = partial(_poison, name, np.inf)
    return tamperings


# What no single-array edit above reaches: counts, order, ranges, extra arrays; with the reason given.
TAMPERINGS_BY_HAND: dict[str, tuple[Callable[[Arrays], None], str]] = {
    "no-trees": (lambda a: a.update(n_trees=np.array(0)), "n_trees and words must be at least 1"),
    "huge-n-features": (lambda a: a.update(n_features=np.array(10**12)), "does not match the"),
    "unknown-kind": (lambda a: a.update(kind=np.array("ranker")), "kind 'ranker' is not one of"),
    "extra-array": (lambda a: a.update(extra=np.zeros(1)), "missing or unexpected"),
    "offsets-shifted": (lambda a: a.update(leaf_offsets=a["leaf_offsets"] + 1), "leaf_offsets must start at 0"),
    "offsets-reversed": (lambda a: a.update(leaf_offsets=a["leaf_offsets"][::-1].copy()), "leaf_offsets must"),
    "thresholds-unsorted": (
        lambda a: a.update(thresholds_0=a["thresholds_0"][::-1].copy()),
        "thresholds_0 are not finite and strictly increasing",
    ),
    "masks-cleared": (lambda a: a.update(leaf_masks_2=np.zeros_like(a["leaf_masks_2"])), "clear the last leaf"),
    "duplicate-feature-names": (
        lambda a: a.update(feature_names=np.array(["x"] * a["feature_names"].size)),
        "feature_names must be unique",
    ),
    "duplicate-classes": (lambda a: a.update(classes=np.zeros_like(a["classes"])), "classes must be unique"),
    "old-format": (lambda a: a.update(format_version=np.array(1)), "compiled forest format 1, expected 2"),
}


def test_every_generated_tampering_of_the_compiled_model_refuses_to_start(
    compiled_arrays: Arrays, compiled_model_dir: Path, monkeypatch: pytest.MonkeyPatch, log_records: LogRecords
) -> None:
    tamperings = generated_tamperings(compiled_arrays)
    assert len(tamperings) > 3 * len(compiled_arrays)
    for name, tamper in tamperings.items():
        arrays = {key: value.copy() for key, value in compiled_arrays.items()}
        tamper(arrays)
        replace_model_file(compiled_model_dir, serialize(arrays))

        reason = refusal(compiled_model_dir, monkeypatch, log_records)
        assert "cannot be read" in reason, (name, reason)


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

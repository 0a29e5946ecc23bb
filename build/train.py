"""Produce the model a spec describes, deterministically, and write it with its manifest.

A spec with a `[training]` recipe is trained on a held-out split (stratified for
classification); a spec with an `estimator_file` takes that file after checking its digest,
its scikit-learn version and its interface. Either way the model is rebuilt only when
something that shapes it changed: the spec, its data and recipe files, this module's
source, or the versions of Python and the libraries that fit and pickle it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import platform
import shutil
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import joblib
import numpy as np
from numpy.typing import NDArray
from sklearn.base import is_classifier, is_regressor
from sklearn.metrics import accuracy_score, f1_score, mean_absolute_error, r2_score, root_mean_squared_error
from sklearn.model_selection import train_test_split

from build import DEFAULT_SPEC, PROJECT_ROOT
from build.dataset import Table, make_estimator, sample_table, training_table
from build.native_models import (
    LIBRARY_PACKAGES,
    fitted_on_pandas_categories,
    is_native,
    load_native,
    model_libraries,
    outputs_per_row,
)
from build.spec import SKLEARN_DATASET_PREFIX, ModelSpec, SpecError, add_spec_argument, load_spec
from serving.engines.scikit_learn import as_fitted, unpickle_estimator
from serving.errors import ModelLoadError, PickledVersionError
from serving.manifest import MANIFEST_FILE, Label, Manifest, Profile
from serving.profile import build_profile

log = logging.getLogger(__name__)

MODEL_CACHE_DIR = PROJECT_ROOT / ".model-cache"
MODEL_FILE = "model.joblib"
LIBRARIES = ("scikit-learn", "numpy", "scipy", "joblib")
# Installed in the build environment (requirements-dev.txt): recorded for the models that use them.
MODEL_LIBRARIES = tuple(LIBRARY_PACKAGES.values())


@dataclass(frozen=True)
class Rows:
    """The rows the build checks the model on: what it was fitted on and what it was not."""

    train: NDArray[Any]
    held_out: NDArray[Any]
    held_out_target: NDArray[Any] | None


@dataclass(frozen=True)
class TrainResult:
    model_path: Path
    manifest_path: Path
    manifest: dict[str, Any]
    retrained: bool


def model_cache_dir(spec: ModelSpec) -> Path:
    """Where the build keeps the spec's trained model between builds."""
    return MODEL_CACHE_DIR / spec.name


def library_versions(estimator: Any = None) -> dict[str, str]:
    """Python's and the libraries' versions; XGBoost's or LightGBM's too when the estimator uses it."""
    versions = {"python": platform.python_version()}
    versions.update({name: metadata.version(name) for name in LIBRARIES})
    versions.update({name: metadata.version(name) for name in model_libraries(estimator)})
    return versions


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _input_files(spec: ModelSpec) -> list[Path]:
    """Files beside the spec whose bytes shape the model."""
    names = [spec.estimator_file, spec.sample_data]
    if spec.training is not None:
        if not spec.training.data.startswith(SKLEARN_DATASET_PREFIX):
            names.append(spec.training.data)
        if ":" in spec.training.estimator:
            names.append(spec.training.estimator.partition(":")[0])
    return [spec.path(name) for name in names if name is not None]


def fingerprint(spec: ModelSpec) -> str:
    """Hash of every input that shapes the model file's bytes and its manifest."""
    inputs = {
        "spec": spec.model_dump(mode="json", exclude={"directory"}),
        "files": {path.name: sha256_of(path) for path in _input_files(spec)},
        "training_code": sha256_of(Path(__file__)),
        "python": f"{sys.version_info.major}.{sys.version_info.minor}",
        "libraries": {name: metadata.version(name) for name in LIBRARIES + MODEL_LIBRARIES},
    }
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


def split_rows(spec: ModelSpec) -> tuple[Rows, NDArray[Any]]:
    """The recipe's train/held-out split (stratified for classification), and the training target."""
    assert spec.training is not None
    table = training_table(spec)
    assert table.target is not None
    stratify = table.target if spec.task == "classification" else None
    x_train, x_test, y_train, y_test = train_test_split(
        table.rows,
        table.target,
        test_size=spec.training.test_size,
        random_state=spec.training.random_state,
        stratify=stratify,
    )
    return Rows(x_train, x_test, y_test), y_train


def check_rows(spec: ModelSpec) -> Rows:
    """The rows to check the model on: the held-out split of a recipe, or a fitted model's sample data."""
    if spec.training is not None:
        return split_rows(spec)[0]
    sample = sample_table(spec) or Table(np.empty((0, len(spec.features))), None)
    return Rows(np.empty((0, len(spec.features)), dtype=sample.rows.dtype), sample.rows, sample.target)


def _first_line(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return (text[0] if text else type(error).__name__)[:300]


def check_estimator(spec: ModelSpec, estimator: Any) -> None:
    """Before any training or metrics: an estimator (fit and predict), of the spec's task, whose
    params scikit-learn accepts; each refusal one line."""
    assert spec.training is not None
    reference = spec.training.estimator
    if not (callable(getattr(estimator, "fit", None)) and callable(getattr(estimator, "predict", None))):
        raise SpecError(
            f"`training.estimator` {reference!r} gave a {type(estimator).__name__}, "
            "not an estimator with fit and predict"
        )
    wanted_task = is_classifier(estimator) if spec.task == "classification" else is_regressor(estimator)
    if not wanted_task:
        raise SpecError(f"`task` is {spec.task!r}, but the estimator is a {type(estimator).__name__}")
    # scikit-learn's own parameter check; the XGBoost and LightGBM wrappers inherit the method but
    # declare no constraints for it to check (they check their params when they fit).
    validate = getattr(estimator, "_validate_params", None)
    if callable(validate) and hasattr(estimator, "_parameter_constraints"):
        try:
            validate()
        except (ValueError, TypeError) as error:
            raise SpecError(f"`training.params` do not fit {reference}: {_first_line(error)}") from None


def typed_targets(estimator: Any, target: NDArray[Any], source: str) -> NDArray[Any]:
    """A CSV's target column (text) as the estimator's classes: integer labels as integers, and
    so on; a value that is none of its classes is refused in one line."""
    by_text = {str(json_value(label)): label for label in estimator.classes_}
    unknown = next((value for value in target.tolist() if str(value) not in by_text), None)
    if unknown is not None:
        raise SpecError(f"{source}: the target {unknown!r} is none of the estimator's classes {list(by_text)[:10]}")
    return np.array([by_text[str(value)] for value in target.tolist()], dtype=estimator.classes_.dtype)


def check_interface(spec: ModelSpec, estimator: Any) -> None:
    """Refuse an estimator whose task, features or classes disagree with the spec."""
    wanted_task = is_classifier(estimator) if spec.task == "classification" else is_regressor(estimator)
    if not wanted_task:
        raise SpecError(f"`task` is {spec.task!r}, but the estimator is a {type(estimator).__name__}")
    categorical = fitted_on_pandas_categories(estimator)
    if categorical is not None:
        raise SpecError(
            f"`estimator_file`: the {categorical} was fitted on pandas categorical columns, which the API's rows "
            "are not: fit it on the categories' integer codes (LightGBM categorical_feature, XGBoost "
            "feature_types 'c'), or encode them in a Pipeline step before it"
        )
    if (outputs := outputs_per_row(estimator)) != 1:
        raise SpecError(f"`estimator_file`: the estimator predicts {outputs} values per row; a model spec serves one")
    n_features = getattr(estimator, "n_features_in_", None)
    if n_features != len(spec.features):
        raise SpecError(f"`features` lists {len(spec.features)} features; the estimator takes {n_features}")
    fitted_names = getattr(estimator, "feature_names_in_", None)
    if fitted_names is not None and list(fitted_names) != spec.feature_names:
        raise SpecError(f"`features` must be {list(fitted_names)} in that order, the estimator's feature_names_in_")
    if spec.task == "classification" and spec.class_names is not None:
        n_classes = len(estimator.classes_)
        if len(spec.class_names) != n_classes:
            raise SpecError(f"`class_names` lists {len(spec.class_names)} names; the estimator has {n_classes} classes")


def encoded_categories(estimator: Any, columns: list[int]) -> dict[int, list[Any]]:
    """The categories each fitted encoder (OneHotEncoder, OrdinalEncoder) of `estimator` knows, by
    the input column it reads (`columns`: the input columns `estimator` itself sees), through
    Pipelines and ColumnTransformers."""
    found: dict[int, list[Any]] = {}
    if hasattr(estimator, "categories_") and len(estimator.categories_) == len(columns):
        return {column: list(known) for column, known in zip(columns, estimator.categories_, strict=True)}
    if hasattr(estimator, "steps"):
        # A Pipeline: its steps up to the first that changes the column count (imputers, scalers
        # keep it) see its input columns.
        for _, step in estimator.steps:
            found |= encoded_categories(step, columns)
            if found or getattr(step, "n_features_in_", None) != len(columns) or hasattr(step, "transformers_"):
                break
    names = [str(name) for name in getattr(estimator, "feature_names_in_", [])]
    for _, transformer, selected in getattr(estimator, "transformers_", []):
        chosen = [selected] if isinstance(selected, str) else list(np.atleast_1d(selected))
        try:
            if chosen and all(isinstance(column, str) for column in chosen):
                picked = [names.index(str(column)) for column in chosen]
            else:
                picked = np.arange(len(columns))[np.asarray(chosen)].tolist()
        except (IndexError, ValueError, TypeError):  # columns it does not say how to find: not checked
            continue
        found |= encoded_categories(transformer, [columns[int(index)] for index in picked])
    return found


def check_categories(spec: ModelSpec, estimator: Any, base: NDArray[Any]) -> None:
    """Every category the spec lists must be one the fitted model takes: none its encoder never saw
    (which the compiled engine then refuses in every batch), and each predicted once in the row
    `base` (a row of the model's own data)."""
    known = encoded_categories(estimator, list(range(len(spec.features))))
    for index, feature in enumerate(spec.features):
        unseen = [value for value in feature.categories or [] if index in known and value not in known[index]]
        if unseen:
            raise SpecError(
                f"`features` {feature.name!r}: the fitted encoder never saw the category {unseen[0]!r} the spec "
                f"lists; it knows {[json_value(value) for value in known[index]][:20]}"
            )
    probes = []
    for index, feature in enumerate(spec.features):
        for category in feature.categories or []:
            row = base.copy()
            row[index] = category
            probes.append((feature.name, category, row))
    if not probes:
        return
    fitted = as_fitted(estimator)
    try:
        fitted.predict(np.array([row for _, _, row in probes], dtype=base.dtype))
    except (ValueError, TypeError, KeyError):
        for name, category, row in probes:
            try:
                fitted.predict(row[np.newaxis, :])
            except (ValueError, TypeError, KeyError) as error:
                raise SpecError(
                    f"`features` {name!r}: the fitted model refuses the category {category!r} the spec lists "
                    f"({_first_line(error)}); list only the categories it was fitted on"
                ) from None


def evaluate(spec: ModelSpec, estimator: Any, rows: NDArray[Any], target: NDArray[Any]) -> dict[str, float]:
    predicted = as_fitted(estimator).predict(rows)
    if spec.task == "classification":
        return {
            "test_accuracy": round(float(accuracy_score(target, predicted)), 6),
            "test_f1_macro": round(float(f1_score(target, predicted, average="macro")), 6),
        }
    return {
        "test_r2": round(float(r2_score(target, predicted)), 6),
        "test_mae": round(float(mean_absolute_error(target, predicted)), 6),
        "test_rmse": round(float(root_mean_squared_error(target, predicted)), 6),
    }


def json_value(value: Any) -> Any:
    """A value from a numpy array as JSON has it: a Python number or string, None for NaN."""
    value = value.item() if isinstance(value, np.generic) else value
    return None if isinstance(value, float) and math.isnan(value) else value


def _label(value: Any) -> Label:
    label = json_value(value)
    if not isinstance(label, int | float | str):
        raise SpecError(f"class {label!r} is not a number or a string; the API answers classes as JSON")
    return label


def profile_rows(spec: ModelSpec, estimator: Any, rows: Rows, classes: list[Label]) -> Profile:
    """The training profile: the features on the training rows (a fitted model's sample rows), the
    predictions on the held-out (sample) rows."""
    profiled = rows.train if len(rows.train) else rows.held_out
    predicted = [json_value(value) for value in as_fitted(estimator).predict(rows.held_out)]
    return build_profile(
        spec.features,
        profiled,
        predicted,
        classes,
        source="training" if len(rows.train) else "sample",
        not_captured=spec.not_captured,
    )


def build_manifest(spec: ModelSpec, estimator: Any, metrics: dict[str, Any], model_path: Path) -> Manifest:
    digest = sha256_of(model_path)
    classes = [_label(label) for label in estimator.classes_] if spec.task == "classification" else []
    rows = check_rows(spec)
    held_out = rows.held_out
    example = spec.example if spec.example is not None else [json_value(value) for value in held_out[0]]
    return Manifest(
        schema_version=2,
        name=spec.name,
        version=digest[:12],
        file=model_path.name,
        sha256=digest,
        task=spec.task,
        estimator=f"{type(estimator).__module__}.{type(estimator).__qualname__}",
        features=spec.manifest_features,
        class_names=spec.class_names or [str(label) for label in classes],
        classes=classes,
        example=example,
        training=spec.training.model_dump(mode="json") if spec.training else {"estimator_file": spec.estimator_file},
        metrics=metrics,
        libraries=library_versions(estimator),
        fingerprint=fingerprint(spec),
        probabilities=spec.task != "classification" or callable(getattr(estimator, "predict_proba", None)),
        profile=profile_rows(spec, estimator, rows, classes),
    )


def write_manifest(manifest: Manifest, path: Path) -> None:
    path.write_text(json.dumps(manifest.model_dump(mode="json", exclude_none=True), indent=2, sort_keys=True) + "\n")


def _fit(spec: ModelSpec) -> tuple[Any, dict[str, Any]]:
    estimator = make_estimator(spec)
    check_estimator(spec, estimator)
    rows, y_train = split_rows(spec)
    log.info("training %s (%s) on %d rows", spec.name, type(estimator).__name__, len(rows.train))
    try:
        estimator.fit(rows.train, y_train)
    except (ValueError, TypeError) as error:
        raise SpecError(f"training {type(estimator).__name__} failed: {_first_line(error)}") from None
    assert rows.held_out_target is not None
    metrics = evaluate(spec, estimator, rows.held_out, rows.held_out_target)
    return estimator, {**metrics, "train_rows": len(rows.train), "test_rows": len(rows.held_out)}


def _take_fitted(spec: ModelSpec, model_path: Path) -> tuple[Any, dict[str, Any]]:
    assert spec.estimator_file is not None
    source = spec.path(spec.estimator_file)
    payload = source.read_bytes()
    digest = hashlib.sha256(payload).hexdigest()
    if spec.sha256 is not None and digest != spec.sha256:
        raise SpecError(f"`sha256`: {source.name} has sha256 {digest}, the spec expects {spec.sha256}")
    native = is_native(source)
    if native:
        estimator = load_native(source, spec)
    else:
        try:
            estimator = unpickle_estimator(payload, source)
        except PickledVersionError as error:
            running = metadata.version("scikit-learn")
            raise SpecError(
                f"`estimator_file`: {source.name} was pickled with scikit-learn {error.pickled_with}, and the "
                f"function runs {running} (functions/predict/requirements.txt): pickle the estimator again with "
                f"scikit-learn {running}, e.g. with this project's .venv/bin/python (docs/own-model.md)"
            ) from None
        except ModelLoadError as error:
            raise SpecError(f"`estimator_file`: {error.message}") from None
    check_interface(spec, estimator)
    if native:
        # Kept as the estimator that serves it, pickled: every later step reads a joblib.
        joblib.dump(estimator, model_path)
    else:
        shutil.copyfile(source, model_path)
    rows = check_rows(spec)
    metrics: dict[str, Any] = {"test_rows": len(rows.held_out)}
    if rows.held_out_target is not None and len(rows.held_out):
        target = rows.held_out_target
        if spec.task == "classification":
            target = typed_targets(estimator, target, f"`sample_data` {spec.sample_data}")
        metrics.update(evaluate(spec, estimator, rows.held_out, target))
    return estimator, metrics


def read_manifest(model_dir: Path) -> dict[str, Any] | None:
    path = model_dir / MANIFEST_FILE
    if not path.is_file():
        return None
    manifest: dict[str, Any] = json.loads(path.read_text())
    return manifest


def is_up_to_date(model_dir: Path, spec: ModelSpec) -> bool:
    manifest = read_manifest(model_dir)
    model_path = model_dir / MODEL_FILE
    return (
        manifest is not None
        and manifest.get("fingerprint") == fingerprint(spec)
        and model_path.is_file()
        and sha256_of(model_path) == manifest.get("sha256")
    )


def train_if_needed(model_dir: Path, spec: ModelSpec | None = None) -> TrainResult:
    """Reuse the model in `model_dir` when its fingerprint matches, else produce and write it."""
    spec = spec or load_spec(DEFAULT_SPEC)
    model_path = model_dir / MODEL_FILE
    manifest_path = model_dir / MANIFEST_FILE
    if is_up_to_date(model_dir, spec):
        manifest = read_manifest(model_dir)
        assert manifest is not None
        log.info("model %s %s is up to date in %s, not rebuilding", spec.name, manifest["version"], model_dir)
        return TrainResult(model_path, manifest_path, manifest, retrained=False)

    model_dir.mkdir(parents=True, exist_ok=True)
    if spec.training is not None:
        estimator, metrics = _fit(spec)
        check_interface(spec, estimator)
        joblib.dump(estimator, model_path)
    else:
        estimator, metrics = _take_fitted(spec, model_path)
    check_categories(spec, estimator, check_rows(spec).held_out[0])
    built = build_manifest(spec, estimator, metrics, model_path)
    write_manifest(built, manifest_path)
    log.info("wrote model %s %s (%s) to %s", spec.name, built.version, metrics, model_dir)
    return TrainResult(model_path, manifest_path, built.model_dump(mode="json", exclude_none=True), retrained=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, required=True, help="directory for the model and its manifest")
    add_spec_argument(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    try:
        train_if_needed(args.out, load_spec(args.spec))
    except SpecError as error:
        log.error("model spec problem: %s", error)
        raise SystemExit(1) from error


if __name__ == "__main__":
    main()

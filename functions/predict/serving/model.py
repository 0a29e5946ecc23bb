"""Loading the baked model (once, at cold start) and predicting with it.

The manifest names the runtime the build baked: "compiled-forest" (plain arrays evaluated
with numpy, no scikit-learn in the package) or "scikit-learn" (the pickled estimator).
Loading checks the runtime file's sha256 against the manifest before reading it, then that
the model matches the manifest's features and classes. Predicting is a pure function of
the loaded model and already-validated rows.
"""

from __future__ import annotations

import hashlib
import io
import time
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, ValidationError

from serving.compiled_forest import CompiledForest
from serving.errors import InvalidRequestError, ModelLoadError
from serving.observability import logger

MANIFEST_FILE = "manifest.json"
SUPPORTED_MANIFEST_SCHEMA = 1


RuntimeName = Literal["compiled-forest", "scikit-learn"]
COMPILED_FOREST: RuntimeName = "compiled-forest"
SCIKIT_LEARN: RuntimeName = "scikit-learn"


class RuntimeSpec(BaseModel):
    """Which runtime serves the model, from which file."""

    model_config = ConfigDict(frozen=True)

    name: RuntimeName
    file: str
    sha256: str


class Manifest(BaseModel):
    """The build step's record of the model: identity, interface, provenance and metrics."""

    model_config = ConfigDict(frozen=True, extra="allow")

    schema_version: int
    name: str
    version: str
    file: str
    sha256: str
    estimator: str
    feature_names: list[str]
    class_names: list[str]
    classes: list[int]
    metrics: dict[str, Any]
    libraries: dict[str, str]
    runtime: RuntimeSpec | None = None

    @property
    def serving_runtime(self) -> RuntimeSpec:
        """The baked runtime; a manifest straight from training is served by scikit-learn."""
        return self.runtime or RuntimeSpec(name=SCIKIT_LEARN, file=self.file, sha256=self.sha256)


class Predictor(Protocol):
    def predict(self, rows: NDArray[np.float64]) -> NDArray[Any]: ...


@dataclass(frozen=True)
class Predictions:
    labels: list[int]
    probabilities: NDArray[np.float64] | None = None


@dataclass(frozen=True)
class LoadedModel:
    manifest: Manifest
    predictor: Predictor

    @property
    def n_features(self) -> int:
        return len(self.manifest.feature_names)

    def class_name(self, label: int) -> str:
        return self.manifest.class_names[self.manifest.classes.index(label)]

    def predict(self, rows: Sequence[Sequence[float]], probabilities: bool = False) -> Predictions:
        """Class ids for validated rows and, if asked, each class's probability (columns in manifest order)."""
        features = np.asarray(rows, dtype=np.float64)
        if not probabilities:
            return Predictions([int(label) for label in self.predictor.predict(features)])
        # Tree predictors give both from one evaluation; any other estimator's predict need not be
        # the argmax of its predict_proba, so it is asked for each.
        predict_with_proba = getattr(self.predictor, "predict_with_proba", None)
        if predict_with_proba is not None:
            labels, proba = predict_with_proba(features)
            return Predictions([int(label) for label in labels], proba)
        predict_proba = getattr(self.predictor, "predict_proba", None)
        if predict_proba is None:
            raise InvalidRequestError("this model does not provide probabilities; omit ?probabilities=true")
        return Predictions([int(label) for label in self.predictor.predict(features)], predict_proba(features))


def _read_manifest(model_dir: Path) -> Manifest:
    path = model_dir / MANIFEST_FILE
    try:
        manifest = Manifest.model_validate_json(path.read_bytes())
    except FileNotFoundError as error:
        raise ModelLoadError(f"model manifest not found at {path}") from error
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        raise ModelLoadError(f"model manifest {path} is invalid: {problems}") from error
    if manifest.schema_version != SUPPORTED_MANIFEST_SCHEMA:
        raise ModelLoadError(
            f"model manifest {path} has schema_version {manifest.schema_version}, "
            f"this function reads {SUPPORTED_MANIFEST_SCHEMA}"
        )
    return manifest


def _load_predictor(runtime: RuntimeSpec, payload: bytes, path: Path) -> Any:
    if runtime.name == COMPILED_FOREST:
        try:
            return CompiledForest.load(io.BytesIO(payload))
        # What numpy raises for a file that is not a readable .npz of plain arrays (or whose arrays
        # fail CompiledForest's checks, a ValueError).
        except (ValueError, KeyError, OSError, EOFError, zipfile.BadZipFile) as error:
            raise ModelLoadError(f"compiled model {path} cannot be read: {error}") from error
    # Imported only here: a package with the compiled runtime has no scikit-learn at all.
    from serving.sklearn_runtime import load_estimator

    try:
        return load_estimator(payload, path)
    except ModelLoadError:
        raise
    # Unpickling a damaged file (its sha256 matched a careless manifest) can fail with any exception.
    except Exception as error:
        raise ModelLoadError(f"model {path} cannot be unpickled: {error!r}") from error


def _recorded_interface(predictor: Any) -> dict[str, Any]:
    """What the model file itself says about its inputs and outputs (None: not recorded)."""
    if isinstance(predictor, CompiledForest):
        return {
            "feature_names": predictor.feature_names,
            "n_features": predictor.n_features,
            "classes": [] if predictor.classes is None else predictor.classes.tolist(),
            "class_names": predictor.class_names,
        }
    # The scikit-learn runtime: the estimator's own attributes (feature names only when fitted with them).
    estimator = getattr(predictor, "estimator", predictor)
    names = getattr(estimator, "feature_names_in_", None)
    return {
        "feature_names": None if names is None else [str(name) for name in names],
        "n_features": int(estimator.n_features_in_),
        "classes": np.asarray(getattr(estimator, "classes_", [])).tolist(),
        "class_names": None,
    }


def _check_interface(predictor: Any, manifest: Manifest, path: Path) -> None:
    """The manifest is trusted for nothing the model records itself: names in order, counts, classes."""
    claimed = {
        "feature_names": manifest.feature_names,
        "n_features": len(manifest.feature_names),
        "classes": manifest.classes,
        "class_names": manifest.class_names,
    }
    for key, recorded in _recorded_interface(predictor).items():
        if recorded is not None and recorded != claimed[key]:
            raise ModelLoadError(f"model {path} records {key} {recorded}, its manifest says {claimed[key]}")
    if len(manifest.class_names) != len(manifest.classes):
        raise ModelLoadError(
            f"model manifest names {len(manifest.class_names)} classes for the model's {len(manifest.classes)}"
        )


def load_model(model_dir: Path) -> LoadedModel:
    """Load and verify the model in `model_dir`; raise ModelLoadError rather than serve a wrong one."""
    started = time.perf_counter()
    manifest = _read_manifest(model_dir)
    runtime = manifest.serving_runtime
    path = model_dir / runtime.file
    try:
        payload = path.read_bytes()
    except FileNotFoundError as error:
        raise ModelLoadError(f"model file not found at {path}") from error
    digest = hashlib.sha256(payload).hexdigest()
    if digest != runtime.sha256:
        raise ModelLoadError(f"model file {path} has sha256 {digest}, its manifest expects {runtime.sha256}")
    predictor = _load_predictor(runtime, payload, path)
    _check_interface(predictor, manifest, path)
    logger.info(
        "model loaded",
        extra={
            "model_name": manifest.name,
            "model_version": manifest.version,
            "runtime": runtime.name,
            "load_ms": round((time.perf_counter() - started) * 1000, 1),
        },
    )
    return LoadedModel(manifest=manifest, predictor=predictor)

"""Loading the baked model (once, at cold start) and predicting with it.

Loading reads the manifest, checks the model file's sha256 against it before unpickling,
refuses a model pickled by another scikit-learn version, and checks that the estimator
matches the manifest's features and classes. Predicting is a pure function of the
loaded model and already-validated rows.
"""

from __future__ import annotations

import hashlib
import io
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import joblib
import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, ValidationError
from sklearn.exceptions import InconsistentVersionWarning

from serving.errors import InvalidRequestError, ModelLoadError
from serving.forest import TreeEnsembleClassifier
from serving.observability import logger

MANIFEST_FILE = "manifest.json"
SUPPORTED_MANIFEST_SCHEMA = 1


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


class Predictor(Protocol):
    def predict(self, rows: NDArray[np.float64]) -> NDArray[Any]: ...


@dataclass(frozen=True)
class LoadedModel:
    manifest: Manifest
    estimator: Any
    predictor: Predictor

    @property
    def n_features(self) -> int:
        return len(self.manifest.feature_names)

    def check_row(self, row: Sequence[float], location: str) -> None:
        """Reject a row whose length differs from the model's features, naming them."""
        if len(row) != self.n_features:
            names = ", ".join(self.manifest.feature_names)
            raise InvalidRequestError(f"{location}: expected {self.n_features} numbers ({names}), got {len(row)}")

    def predict(self, rows: Sequence[Sequence[float]]) -> list[int]:
        predicted = self.predictor.predict(np.asarray(rows, dtype=np.float64))
        return [int(label) for label in predicted]


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


def _unpickle(payload: bytes, path: Path) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("error", InconsistentVersionWarning)
        try:
            return joblib.load(io.BytesIO(payload))
        except InconsistentVersionWarning as warning:
            raise ModelLoadError(
                f"model {path} was pickled with scikit-learn {warning.original_sklearn_version} "
                f"but this function runs {warning.current_sklearn_version}; rebuild the package"
            ) from warning


def _check_interface(estimator: Any, manifest: Manifest, path: Path) -> None:
    n_features = getattr(estimator, "n_features_in_", None)
    if n_features != len(manifest.feature_names):
        raise ModelLoadError(
            f"model {path} takes {n_features} features, its manifest names {len(manifest.feature_names)}"
        )
    classes = [int(label) for label in getattr(estimator, "classes_", [])]
    if classes != manifest.classes:
        raise ModelLoadError(f"model {path} predicts classes {classes}, its manifest says {manifest.classes}")


def load_model(model_dir: Path) -> LoadedModel:
    """Load and verify the model in `model_dir`; raise ModelLoadError rather than serve a wrong one."""
    started = time.perf_counter()
    manifest = _read_manifest(model_dir)
    path = model_dir / manifest.file
    try:
        payload = path.read_bytes()
    except FileNotFoundError as error:
        raise ModelLoadError(f"model file not found at {path}") from error
    digest = hashlib.sha256(payload).hexdigest()
    if digest != manifest.sha256:
        raise ModelLoadError(f"model file {path} has sha256 {digest}, its manifest expects {manifest.sha256}")
    estimator = _unpickle(payload, path)
    _check_interface(estimator, manifest, path)
    logger.info(
        "model loaded",
        extra={
            "model_name": manifest.name,
            "model_version": manifest.version,
            "load_ms": round((time.perf_counter() - started) * 1000, 1),
        },
    )
    predictor = TreeEnsembleClassifier(estimator) if TreeEnsembleClassifier.supports(estimator) else estimator
    return LoadedModel(manifest=manifest, estimator=estimator, predictor=predictor)

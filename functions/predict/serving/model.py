"""Loading the baked model (once, at cold start) and predicting with it.

The manifest (serving/manifest.py) names the engine the build baked: "compiled" (plain arrays
evaluated with numpy by one of serving/engines/, no scikit-learn in the package) or
"scikit-learn" (the pickled estimator). Loading checks the engine file's sha256 against the
manifest before reading it, then that the manifest agrees with what the file itself records
(feature names, feature count, classes, class names). Predicting is a pure function of the
loaded model and already-validated rows.
"""

from __future__ import annotations

import hashlib
import io
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pydantic import ValidationError

from serving.engines import Engine, load_engine
from serving.engines.errors import EngineInputError
from serving.errors import MAX_LOGGED_CHARS, InvalidRequestError, ModelLoadError, shorten
from serving.manifest import COMPILED, MANIFEST_FILE, EngineRecord, Label, Manifest
from serving.observability import logger

# Compiled kinds whose predict is the first maximum of predict_proba: one evaluation gives both.
ARGMAX_KINDS = frozenset({"forest"})


@dataclass(frozen=True)
class Predictions:
    labels: list[Label]
    """Classes as the estimator's classes_ hold them, or a regressor's numbers."""
    probabilities: NDArray[np.float64] | None = None


@dataclass(frozen=True)
class LoadedModel:
    manifest: Manifest
    engine: Engine
    labels_are_argmax: bool = False
    """The engine's predict is the first maximum of its predict_proba (trees): one evaluation gives both."""

    @property
    def n_features(self) -> int:
        return len(self.manifest.features)

    def class_name(self, label: Label) -> str:
        return self.manifest.class_names[self.manifest.classes.index(label)]

    def predict(self, rows: NDArray[Any], probabilities: bool = False) -> Predictions:
        """Labels for validated rows (2-D, in feature order: float64, or object where there are
        categories) and, if asked, each class's probability (columns in manifest order)."""
        try:
            if not probabilities:
                return Predictions(self.engine.predict(rows).tolist())
            proba = self.engine.predict_proba(rows)
            if self.labels_are_argmax:
                assert self.engine.classes is not None
                return Predictions(self.engine.classes.take(np.argmax(proba, axis=1)).tolist(), proba)
            return Predictions(self.engine.predict(rows).tolist(), proba)
        except EngineInputError as error:
            # The rows validate but the engine refuses them (an unknown category, a non-finite value).
            raise InvalidRequestError(f"the model cannot take these rows: {shorten(str(error))}") from error


def _read_manifest(model_dir: Path) -> Manifest:
    path = model_dir / MANIFEST_FILE
    try:
        manifest = Manifest.model_validate_json(path.read_bytes())
    except FileNotFoundError as error:
        raise ModelLoadError(f"model manifest not found at {path}") from error
    except ValidationError as error:
        described = "; ".join(f"{'.'.join(map(str, problem['loc']))}: {problem['msg']}" for problem in error.errors())
        raise ModelLoadError(f"model manifest {path} is invalid: {shorten(described, MAX_LOGGED_CHARS)}") from error
    return manifest


def _load_engine(record: EngineRecord, payload: bytes, path: Path) -> tuple[Engine, dict[str, Any], bool]:
    """The engine, what its file records about the model's interface (None: not recorded), and
    whether its labels are the argmax of its probabilities."""
    if record.name == COMPILED:
        try:
            # Not mutated, equivalent: np.load tests `if not allow_pickle`: None refuses pickles as False does;
            # np.load's allow_pickle defaults to False: the argument states it, it does not change it.
            with np.load(io.BytesIO(payload), allow_pickle=False) as stored:  # pragma: no mutate
                arrays = {name: stored[name] for name in stored.files}
            engine = load_engine(arrays)
            recorded = {
                "feature_names": arrays["feature_names"].tolist(),
                "class_names": arrays["class_names"].tolist(),
            }
        # What numpy raises for a file that is not a readable .npz of plain arrays, and what the
        # engines raise for arrays that fail their checks (ValueErrors) or lack one (KeyError).
        except (ValueError, KeyError, OSError, EOFError, zipfile.BadZipFile) as error:
            raise ModelLoadError(f"compiled model {path} cannot be read: {shorten(str(error))}") from error
        return engine, recorded, record.kind in ARGMAX_KINDS
    # Imported only here: a package with a compiled engine has no scikit-learn at all.
    from serving.engines.scikit_learn import ScikitLearnEngine, unpickle_estimator

    try:
        sklearn_engine = ScikitLearnEngine(unpickle_estimator(payload, path))
    except ModelLoadError:
        raise
    # Unpickling a damaged file (its sha256 matched a careless manifest) can fail with any exception.
    except Exception as error:
        raise ModelLoadError(f"model {path} cannot be unpickled: {shorten(repr(error))}") from error
    # Not mutated, equivalent: None means not recorded: _check_interface skips the entry before it reads its key.
    recorded = {"feature_names": sklearn_engine.feature_names, "class_names": None}  # pragma: no mutate
    return sklearn_engine, recorded, sklearn_engine.labels_are_argmax


def _typed(value: Any) -> Any:
    if isinstance(value, list):
        return [(type(item), item) for item in value]
    # Not mutated, equivalent: the one value that is no list is n_features, an int on both sides.
    return (type(value), value)  # pragma: no mutate


def _check_interface(engine: Engine, recorded: dict[str, Any], manifest: Manifest, path: Path) -> None:
    """The manifest is trusted for nothing the model records itself: names in order, counts, classes."""
    claimed: dict[str, Any] = {
        "feature_names": manifest.feature_names,
        "class_names": manifest.class_names,
        "n_features": len(manifest.features),
        "classes": manifest.classes,
    }
    recorded = {
        **recorded,
        "n_features": engine.n_features,
        "classes": [] if engine.classes is None else engine.classes.tolist(),
    }
    for key, value in recorded.items():
        # Compared with their types: a class 1.0 is not the manifest's 1 (the answer would read 1.0).
        if value is not None and _typed(value) != _typed(claimed[key]):
            raise ModelLoadError(
                f"model {path} records {key} {shorten(str(value))}, its manifest says {shorten(str(claimed[key]))}"
            )


def load_model(model_dir: Path) -> LoadedModel:
    """Load and verify the model in `model_dir`; raise ModelLoadError rather than serve a wrong one."""
    started = time.perf_counter()
    manifest = _read_manifest(model_dir)
    record = manifest.serving_engine
    path = model_dir / record.file
    try:
        payload = path.read_bytes()
    except FileNotFoundError as error:
        raise ModelLoadError(f"model file not found at {path}") from error
    digest = hashlib.sha256(payload).hexdigest()
    if digest != record.sha256:
        raise ModelLoadError(f"model file {path} has sha256 {digest}, its manifest expects {record.sha256}")
    engine, recorded, labels_are_argmax = _load_engine(record, payload, path)
    _check_interface(engine, recorded, manifest, path)
    try:
        manifest.check_profile()
    except ValueError as error:
        raise ModelLoadError(
            f"model manifest {model_dir / MANIFEST_FILE} is invalid: profile: {shorten(str(error), MAX_LOGGED_CHARS)}"
        ) from error
    logger.info(
        "model loaded",
        extra={
            "model_name": manifest.name,
            "model_version": manifest.version,
            "engine": record.name,
            "engine_kind": record.kind,
            "load_ms": round((time.perf_counter() - started) * 1000, 1),
        },
    )
    return LoadedModel(manifest=manifest, engine=engine, labels_are_argmax=labels_are_argmax)

"""Bake the model into the package: compile it to a numpy-only engine behind the exactness gate,
or keep the pickled estimator for the scikit-learn engine, and write the manifest that says which.

The compiled file is one .npz of plain arrays (read with allow_pickle=False): the engine's arrays
(build/engines/) plus the model's interface, its feature names in order and its class names, so
the function can check the manifest against the file itself at load.
"""

from __future__ import annotations

import hashlib
import io
import logging
import shutil
from pathlib import Path
from typing import Any, Literal

import joblib
import numpy as np
from numpy.typing import NDArray

from build.engines import UnsupportedEstimatorError, check_exactness, compile_estimator, compiler_for
from build.engines.base import serialize
from build.native_models import model_libraries
from build.spec import ModelSpec
from build.train import MODEL_FILE, check_rows, train_if_needed, write_manifest
from serving.config import PACKAGE_MODEL_DIR
from serving.engines import load_engine
from serving.engines.scikit_learn import as_fitted, fitted_on_a_dataframe
from serving.manifest import COMPILED, MANIFEST_FILE, SCIKIT_LEARN, EngineRecord, Manifest

log = logging.getLogger(__name__)

COMPILED_FILE = "model.npz"
EngineChoice = Literal["auto", "compiled", "scikit-learn"]
# Training and held-out rows the exactness gate compares, each (probes come on top).
GATE_ROWS = 20_000
ENGINE_CHOICES: tuple[EngineChoice, ...] = ("auto", COMPILED, SCIKIT_LEARN)


class CompileRefusedError(Exception):
    """`--engine compiled` was asked for, but the model cannot be compiled; the message says why."""


def _sample(rows: NDArray[Any]) -> NDArray[Any]:
    """At most GATE_ROWS of `rows` (a seeded sample, in their order): the gate's time stays
    bounded on a production-size dataset, and its probes cover every threshold anyway."""
    # Not mutated, equivalent: a sample of all GATE_ROWS rows of GATE_ROWS, in order, is every row.
    if len(rows) <= GATE_ROWS:  # pragma: no mutate
        return rows
    # Not mutated, equivalent: any fixed seed is as good, and numpy reads replace=None as False.
    chosen = np.sort(np.random.default_rng(0).choice(len(rows), size=GATE_ROWS, replace=False))  # pragma: no mutate
    return rows[chosen]


def compile_model(estimator: Any, spec: ModelSpec, manifest: Manifest) -> tuple[bytes, EngineRecord]:
    """The compiled file and its engine record, after proving the engine exact on the training and
    held-out rows and on the compiler's probes; raises UnsupportedEstimatorError or ExactnessError."""
    compiler = compiler_for(estimator)
    arrays = compile_estimator(estimator)
    arrays["feature_names"] = np.array(manifest.feature_names)
    arrays["class_names"] = np.array(manifest.class_names)
    payload = serialize(arrays)
    # Not mutated, equivalent: the payload was just written by serialize, which refuses object arrays: it holds no
    # pickle to refuse.
    with np.load(io.BytesIO(payload), allow_pickle=False) as stored:  # pragma: no mutate
        engine = load_engine({name: stored[name] for name in stored.files})
    rows = check_rows(spec)
    reference = rows.train if len(rows.train) else rows.held_out
    datasets = {
        "training rows": _sample(rows.train),
        "held-out rows": _sample(rows.held_out),
        "probes": compiler.probe_rows(estimator, reference),
    }
    checked = check_exactness(
        as_fitted(estimator), engine, {name: data for name, data in datasets.items() if len(data)}
    )
    guarantee = compiler.guarantee(estimator)
    log.info("compiled the model (%s engine, %s): bitwise identical on %d rows", compiler.name, guarantee, checked)
    record = EngineRecord(
        name=COMPILED,
        file=COMPILED_FILE,
        sha256=hashlib.sha256(payload).hexdigest(),
        kind=compiler.name,
        guarantee=guarantee,
    )
    return payload, record


def bake_model(target: Path, choice: EngineChoice, cache_dir: Path, spec: ModelSpec) -> Manifest:
    """Train or reuse the spec's model in `cache_dir`, bake it into `target` with the engine that
    serves it (compiled unless `choice` says otherwise or the model cannot be), and return the
    manifest written beside it. `target` must have no model directory yet (FileExistsError):
    nothing from an earlier bake can ship beside this one."""
    result = train_if_needed(cache_dir, spec)
    manifest = Manifest.model_validate(result.manifest)
    model_dir = target / PACKAGE_MODEL_DIR
    model_dir.mkdir(parents=True)
    record: EngineRecord | None = None
    fallback_reason: str | None = None
    if choice != SCIKIT_LEARN:
        try:
            payload, record = compile_model(joblib.load(result.model_path), spec, manifest)
        except UnsupportedEstimatorError as error:
            if choice == COMPILED:
                raise CompileRefusedError(f"cannot compile the model: {error}") from error
            log.info("keeping the scikit-learn engine: %s", error)
            fallback_reason = str(error)
        else:
            (model_dir / COMPILED_FILE).write_bytes(payload)
    if record is None:
        estimator = joblib.load(result.model_path)
        shutil.copy2(result.model_path, model_dir / MODEL_FILE)
        record = EngineRecord(
            name=SCIKIT_LEARN,
            file=MODEL_FILE,
            sha256=manifest.sha256,
            fallback_reason=fallback_reason,
            dataframe_input=fitted_on_a_dataframe(estimator),
            libraries=model_libraries(estimator) or None,
        )
    baked = manifest.model_copy(update={"engine": record})
    write_manifest(baked, model_dir / MANIFEST_FILE)
    log.info(
        "baked model %s %s (%s, %s engine) into %s", baked.name, baked.version, baked.metrics, record.name, model_dir
    )
    return baked

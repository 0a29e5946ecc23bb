"""The rows a spec's model is trained and checked on, as the estimator takes them.

The estimator is called with a 2-D array in the spec's feature order: float64 when every
feature is a number, an object array (str for categories, float for numbers, NaN for
missing) otherwise. A CSV is read with the standard library rather than pandas: pandas
would guess types the spec already states, and the build would then depend on its guesses.
"""

from __future__ import annotations

import csv
import importlib
import importlib.util
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sklearn import datasets as sklearn_datasets

from build.spec import SKLEARN_DATASET_PREFIX, ModelSpec, SpecError
from serving.codecs import FeatureCodec, codec_for
from serving.errors import quote

MAX_SHOWN = 60


@dataclass(frozen=True)
class Table:
    """Feature rows in spec order, and the target where the data has one."""

    rows: NDArray[Any]
    target: NDArray[Any] | None


def _load_bundled(spec: ModelSpec, name: str) -> Table:
    loader: Callable[[], Any] = getattr(sklearn_datasets, name)
    bunch = loader()
    columns = bunch.data.shape[1]
    if columns != len(spec.features):
        raise SpecError(
            f"`features` lists {len(spec.features)} features, but {SKLEARN_DATASET_PREFIX}{name} has {columns} "
            f"columns ({', '.join(bunch.feature_names)}); list one feature per column, in order"
        )
    return Table(np.asarray(bunch.data, dtype=np.float64), np.asarray(bunch.target))


def _cell(codec: FeatureCodec, value: str, line: int, missing: frozenset[str]) -> Any:
    feature = codec.feature
    where = f"line {line}, column {feature.name!r}"
    if value in missing:
        if not feature.allow_missing:
            raise SpecError(f"{where} is missing; set allow_missing = true on that feature to accept it")
        return math.nan
    try:
        return codec.training_value(value)
    except ValueError as error:
        raise SpecError(f"{where}: {quote(value, MAX_SHOWN)} {error}") from None


def read_csv(spec: ModelSpec, path: Path, target: str | None, missing_values: list[str]) -> Table:
    """The feature columns of `path` in spec order (any column order, extra columns ignored), and
    the `target` column if given and present."""
    missing = frozenset(missing_values)
    with path.open(newline="") as stream:
        reader = csv.reader(stream)
        header = next(reader, None)
        if header is None:
            raise SpecError(f"{path} is empty; it needs a header row naming the columns")
        wanted = [*spec.feature_names, *([target] if target is not None else [])]
        absent = [name for name in wanted if name not in header]
        if absent:
            raise SpecError(f"{path} has no column {', '.join(map(repr, absent))}; its header is {header}")
        positions = [header.index(name) for name in spec.feature_names]
        codecs = [codec_for(feature) for feature in spec.features]
        target_position = header.index(target) if target is not None else None
        rows: list[list[Any]] = []
        targets: list[str] = []
        for line, record in enumerate(reader, start=2):
            if len(record) != len(header):
                raise SpecError(f"{path} line {line} has {len(record)} cells; the header has {len(header)}")
            rows.append([_cell(codec, record[p], line, missing) for codec, p in zip(codecs, positions, strict=True)])
            if target_position is not None:
                targets.append(record[target_position])
    if not rows:
        raise SpecError(f"{path} has a header but no rows")
    dtype: type = np.float64 if spec.all_numeric else object
    target_values = None if target_position is None else _target_array(spec, targets, path, target)
    return Table(np.array(rows, dtype=dtype), target_values)


def _target_array(spec: ModelSpec, values: list[str], path: Path, column: str | None) -> NDArray[Any]:
    if spec.task == "classification":
        return np.array(values)
    try:
        return np.array([float(value) for value in values], dtype=np.float64)
    except ValueError:
        raise SpecError(f"{path}: the target column {column!r} of a regression must hold numbers") from None


def training_table(spec: ModelSpec) -> Table:
    """All rows of the spec's training data, with their target."""
    assert spec.training is not None
    data = spec.training.data
    if data.startswith(SKLEARN_DATASET_PREFIX):
        return _load_bundled(spec, data.removeprefix(SKLEARN_DATASET_PREFIX))
    return read_csv(spec, spec.path(data), spec.training.target, spec.training.missing_values)


def sample_table(spec: ModelSpec) -> Table | None:
    """The rows given with a fitted estimator (`sample_data`), with the target when the CSV has it."""
    if spec.sample_data is None:
        return None
    path = spec.path(spec.sample_data)
    with path.open(newline="") as stream:
        header = next(csv.reader(stream), [])
    target = spec.target if spec.target in header else None
    return read_csv(spec, path, target, [""])


def make_estimator(spec: ModelSpec) -> Any:
    """The unfitted estimator of the training recipe: a class by dotted path, or a function in a
    Python file beside the spec, called with the recipe's params."""
    assert spec.training is not None
    reference, params = spec.training.estimator, spec.training.params
    if ":" in reference:
        file_name, _, function_name = reference.partition(":")
        path = spec.path(file_name)
        module_spec = importlib.util.spec_from_file_location(f"model_recipe_{path.stem}", path)
        if not path.is_file() or module_spec is None or module_spec.loader is None:
            raise SpecError(f"`training.estimator`: {file_name!r} is not a Python file beside the spec")
        module = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(module)
        factory = getattr(module, function_name, None)
    else:
        module_name, _, class_name = reference.rpartition(".")
        try:
            factory = getattr(importlib.import_module(module_name), class_name, None) if module_name else None
        except ImportError:
            factory = None
    if not callable(factory):
        raise SpecError(
            f"`training.estimator` {reference!r} is neither a class by dotted path "
            '("sklearn.ensemble.RandomForestClassifier") nor "file.py:function" beside the spec'
        )
    try:
        return factory(**params)
    except TypeError as error:
        raise SpecError(f"`training.params` do not fit {reference}: {error}") from None

"""Preprocessing steps (scalers, SimpleImputer, OneHotEncoder, OrdinalEncoder, ColumnTransformer,
passthrough) with numpy alone, giving the arrays scikit-learn 1.9's `transform` gives.

Each step's arrays live under a key prefix with `<prefix>step` naming its kind. The steps do
what scikit-learn does, in its order: a scaler converts to float64 (a copy, layout kept) and
applies its in-place operations one after another; SimpleImputer converts as it does and
writes the fitted statistics where values are missing; ColumnTransformer selects columns,
transforms each selection and stacks the results with np.hstack (keeping object arrays object,
as it does). An encoder's output for a row is, column by column, a fixed block per category
(and one for an unknown value); build/engines/pipeline.py records those blocks from the fitted
encoder itself, so drop, infrequent categories and unknown handling are the encoder's own.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, ClassVar, Protocol

import numpy as np
from numpy.typing import NDArray

from serving.engines.base import Arrays, check_width, unprefixed
from serving.engines.errors import NonFiniteInputError, UnknownCategoryError
from serving.engines.values import objects

STEP_KEY = "step"
"""`<prefix>step` holds the kind of the preprocessing step stored under that prefix."""
IMPUTER_CONVERSIONS = ("float", "keep", "object")
"""What an imputer's `conversion` holds: how it converts the rows before filling them, as
SimpleImputer's fitted dtype and strategy decide (build/engines/pipeline.py)."""
CATEGORY_KINDS = ("number", "string")
"""What an encoder's `kind_<column>` holds: its categories are numbers, or strings (and NaN)."""


class Step(Protocol):
    """A fitted transformer's `transform`, numpy only."""

    def transform(self, rows: NDArray[Any]) -> NDArray[Any]: ...


def _as_float(rows: NDArray[Any]) -> NDArray[np.float64]:
    """A float64 copy, as check_array(dtype=FLOAT_DTYPES, copy=True, allow-nan) makes it."""
    features = np.array(rows, dtype=np.float64)
    if np.isinf(features).any():
        raise NonFiniteInputError("infinity")
    return features


def _is_missing(value: object) -> bool:
    return isinstance(value, float) and value != value


class Elementwise:
    """StandardScaler, MinMaxScaler, MaxAbsScaler, RobustScaler: in-place operations in order."""

    OPERATIONS: ClassVar[dict[str, Callable[..., Any]]] = {
        "subtract": np.subtract,
        "divide": np.divide,
        "multiply": np.multiply,
        "add": np.add,
    }

    def __init__(self, arrays: Arrays) -> None:
        self.n_features = int(arrays["n_features"])
        self.operations = [
            (self.OPERATIONS[str(name)], arrays[f"operand_{index}"]) for index, name in enumerate(arrays["operations"])
        ]
        self.clip = arrays["clip"]

    def transform(self, rows: NDArray[Any]) -> NDArray[Any]:
        check_width(rows, self.n_features)
        features = _as_float(rows)
        for operation, operand in self.operations:
            operation(features, operand, out=features)
        if self.clip.size:
            np.clip(features, self.clip[0], self.clip[1], out=features)
        return features


class Imputer:
    """SimpleImputer with missing_values=NaN, with or without its missing indicator."""

    def __init__(self, arrays: Arrays) -> None:
        self.n_features = int(arrays["n_features"])
        self.conversion = str(arrays["conversion"])
        if self.conversion not in IMPUTER_CONVERSIONS:
            raise ValueError(
                f"imputer conversion {self.conversion!r} is not among {IMPUTER_CONVERSIONS}: rebuild the package"
            )
        self.statistics = objects(arrays, "statistics") if self.conversion == "object" else arrays["statistics"]
        self.kept: NDArray[np.intp] | None = arrays["kept"] if bool(arrays["drops_columns"]) else None
        self.indicator: NDArray[np.intp] | None = arrays["indicator"] if bool(arrays["add_indicator"]) else None

    def _converted(self, rows: NDArray[Any]) -> NDArray[Any]:
        # Not mutated, equivalent: float rows through the keep path (np.array, then the infinity check) are the same
        # float64 rows.
        if self.conversion == "float":  # pragma: no mutate
            return _as_float(rows)
        # Not mutated, equivalent: every conversion finds NaN by x != x and fills the same values; only the array's
        # type differs; object rows through the keep path (np.array) stay the same object rows.
        if self.conversion == "object":  # pragma: no mutate
            # Not mutated, equivalent: rows reaching an object imputer are object arrays already: np.array keeps them
            # so.
            return np.array(rows, dtype=object)  # pragma: no mutate
        features = np.array(rows)
        if features.dtype.kind == "f" and np.isinf(features).any():
            raise NonFiniteInputError("infinity")
        return features

    def transform(self, rows: NDArray[Any]) -> NDArray[Any]:
        check_width(rows, self.n_features)
        features = self._converted(rows)
        missing = features != features  # NaN, as scikit-learn's _get_mask finds it, also in object arrays
        if self.kept is not None:
            features = features[:, self.kept]
            filled = missing[:, self.kept]
        else:
            filled = missing
        coordinates = np.where(filled.transpose())[::-1]
        features[coordinates] = np.repeat(self.statistics, np.sum(filled, axis=0))
        if self.indicator is None:
            return features
        return np.hstack((features, missing[:, self.indicator]))


class Encoder:
    """OneHotEncoder and OrdinalEncoder: per input column, the block of each category."""

    def __init__(self, arrays: Arrays) -> None:
        self.n_features = int(arrays["n_features"])
        self.labels = [str(label) for label in arrays["labels"]]
        self.offsets = arrays["offsets"].astype(np.intp)
        # Not mutated, equivalent: read only for its truth: float 1.0 and 0.0 are as true and false as the booleans.
        self.unknown_is_error = arrays["unknown_is_error"].astype(bool)  # pragma: no mutate
        self.tables = [arrays[f"table_{column}"] for column in range(self.n_features)]
        kinds = [str(arrays[f"kind_{column}"]) for column in range(self.n_features)]
        unknown = sorted(set(kinds) - set(CATEGORY_KINDS))
        if unknown:
            raise ValueError(f"encoder category kinds {unknown} are not among {CATEGORY_KINDS}: rebuild the package")
        self.numeric = [kind == "number" for kind in kinds]
        self.categories = [
            arrays[f"categories_{column}"] if self.numeric[column] else objects(arrays, f"categories_{column}")
            for column in range(self.n_features)
        ]
        # Not mutated, equivalent: NaN joins the lookup but is never looked up: missing values are mapped first, and
        # NaN sorts last.
        # pragma: no mutate start
        self.lookups = [
            {category: index for index, category in enumerate(categories) if not _is_missing(category)}
            for categories in self.categories
        ]
        # pragma: no mutate end
        self.missing_index = [
            next((index for index, category in enumerate(categories) if _is_missing(category)), len(categories))
            for categories in self.categories
        ]

    def _codes(self, column: int, values: NDArray[Any]) -> NDArray[np.intp]:
        """The category index of each value; len(categories) for an unknown value."""
        unknown = len(self.categories[column])
        missing = self.missing_index[column]
        # Not mutated, equivalent: the float fast path and the general lookup find the same codes; floats never reach
        # a word column; it only picks the float fast path or the general lookup, which find the same codes.
        if values.dtype.kind == "f" and self.numeric[column]:  # pragma: no mutate
            if np.isinf(values).any():
                raise NonFiniteInputError("infinity")
            known = self.categories[column][: len(self.lookups[column])]
            positions = np.minimum(np.searchsorted(known, values), max(known.size - 1, 0))
            # Not mutated, equivalent: np.where reads float zeros as False, as it reads bool ones: the same codes.
            # pragma: no mutate start
            found = known.take(positions) == values if known.size else np.zeros(values.shape, dtype=bool)
            # pragma: no mutate end
            codes = np.where(found, positions, unknown)
            codes[np.isnan(values)] = missing
            return codes.astype(np.intp)
        # Python equality and hashing, as scikit-learn's own lookup for object arrays: "1" is not 1.0.
        lookup = self.lookups[column]
        looked_up = (missing if _is_missing(value) else lookup.get(value, unknown) for value in values.tolist())
        # Not mutated, equivalent: count only preallocates: the iterator gives values.shape[0] codes either way.
        return np.fromiter(looked_up, dtype=np.intp, count=values.shape[0])  # pragma: no mutate

    def transform(self, rows: NDArray[Any]) -> NDArray[Any]:
        check_width(rows, self.n_features)
        # Not mutated, equivalent: np.empty's default dtype is float64.
        encoded = np.empty((rows.shape[0], int(self.offsets[-1])), dtype=np.float64)  # pragma: no mutate
        for column in range(self.n_features):
            codes = self._codes(column, rows[:, column])
            categories = self.categories[column]
            if self.unknown_is_error[column] and (codes == len(categories)).any():
                value = rows[:, column].tolist()[int(np.argmax(codes == len(categories)))]  # a Python value
                raise UnknownCategoryError(self.labels[column], value, categories.tolist())
            encoded[:, self.offsets[column] : self.offsets[column + 1]] = self.tables[column][codes]
        return encoded


class Passthrough:
    """'passthrough': the columns as they are."""

    def transform(self, rows: NDArray[Any]) -> NDArray[Any]:
        return rows


class Sequence:
    """A Pipeline of transformers (a ColumnTransformer's branch): each step's output feeds the next."""

    def __init__(self, arrays: Arrays, prefix: str) -> None:
        self.steps = [load_step(arrays, f"{prefix}steps/{index}/") for index in range(int(arrays[prefix + "n_steps"]))]

    def transform(self, rows: NDArray[Any]) -> NDArray[Any]:
        for step in self.steps:
            rows = step.transform(rows)
        return rows


class Columns:
    """ColumnTransformer with a dense output: each branch transforms its columns, np.hstack joins them."""

    def __init__(self, arrays: Arrays, prefix: str) -> None:
        self.n_features = int(arrays[prefix + "n_features"])
        count = int(arrays[prefix + "n_branches"])
        self.columns = [arrays[f"{prefix}branches/{index}/columns"].astype(np.intp) for index in range(count)]
        self.branches = [load_step(arrays, f"{prefix}branches/{index}/") for index in range(count)]

    def transform(self, rows: NDArray[Any]) -> NDArray[Any]:
        check_width(rows, self.n_features)
        if not self.branches:
            return np.zeros((rows.shape[0], 0))
        # Not mutated, equivalent: the arrays store one column list per branch: the lengths are equal.
        # pragma: no mutate start
        parts = [
            branch.transform(rows[:, columns]) for branch, columns in zip(self.branches, self.columns, strict=True)
        ]
        # pragma: no mutate end
        return np.hstack(parts)


def _load_plain(kind: Callable[[Arrays], Step], arrays: Arrays, prefix: str) -> Step:
    """A step whose arrays are all its own: built from them with the prefix taken off."""
    return kind(unprefixed(arrays, prefix))


# Loaders are bound with partial rather than built by a closure at import: the work then happens
# in a module function called at load time, where a test (and make mutate) can see it.
STEP_LOADERS: dict[str, Callable[[Arrays, str], Step]] = {
    "elementwise": partial(_load_plain, Elementwise),
    "imputer": partial(_load_plain, Imputer),
    "encoder": partial(_load_plain, Encoder),
    "passthrough": lambda _arrays, _prefix: Passthrough(),
    "sequence": Sequence,
    "columns": Columns,
}


def load_step(arrays: Arrays, prefix: str) -> Step:
    """The preprocessing step stored under `prefix` in `arrays`."""
    kind = str(arrays[prefix + STEP_KEY])
    try:
        loader = STEP_LOADERS[kind]
    except KeyError:
        raise ValueError(f"unknown preprocessing step {kind!r}; this function knows {sorted(STEP_LOADERS)}") from None
    return loader(arrays, prefix)

"""Compile a fitted Pipeline (preprocessing steps, then any estimator a compiler supports) into
the arrays serving/engines/pipeline.py and serving/engines/preprocessing.py evaluate.

The final estimator is compiled by whichever compiler supports it, under `<prefix>final/`.
An encoder's blocks are read off the fitted encoder itself: it transforms one row per category
(and, where it accepts them, one unknown row), so drop, min_frequency/max_categories and its
unknown handling are exactly its own. A step outside the list, or a configuration the engine
does not reproduce (a sparse matrix reaching the next step, pandas output, weights), raises
UnsupportedEstimatorError naming the step and its class.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import (
    FunctionTransformer,
    MaxAbsScaler,
    MinMaxScaler,
    OneHotEncoder,
    OrdinalEncoder,
    RobustScaler,
    StandardScaler,
)

from build.engines.base import CompiledArrays, Compiler, UnsupportedEstimatorError
from build.engines.values import is_missing, object_arrays
from serving.engines.pipeline import FORMAT_VERSION
from serving.engines.preprocessing import STEP_KEY
from serving.engines.scikit_learn import as_fitted
from serving.manifest import Guarantee

PROBE_SEED = 0
RANDOM_PROBES = 400
EXTREMES = (0.0, -0.0, 1e10, -1e10, 1e300, -1e300)
SKIPPED = ("passthrough", None)


@dataclass
class Probes:
    """What the steps say about the pipeline's input columns, for probe rows."""

    categories: dict[int, list[Any]] = field(default_factory=dict)
    unknown_allowed: dict[int, bool] = field(default_factory=dict)
    imputed: set[int] = field(default_factory=set)
    edges: dict[int, set[float]] = field(default_factory=dict)


@dataclass
class Columns:
    """The columns entering or leaving a step: a label for messages, and the pipeline input
    column each one still is (None once a step has combined or encoded it)."""

    labels: list[str]
    sources: list[int | None]

    def take(self, indices: list[int]) -> Columns:
        return Columns([self.labels[i] for i in indices], [self.sources[i] for i in indices])


@dataclass
class Context:
    path: str
    prefix: str
    probes: Probes
    sparse_allowed: bool = False


def _refuse(context: Context, step: Any, why: str) -> UnsupportedEstimatorError:
    return UnsupportedEstimatorError(f"step {context.path!r} ({type(step).__name__}): {why}")


def _dense_output(step: Any, context: Context) -> None:
    config = getattr(step, "_sklearn_output_config", {})
    if config.get("transform", "default") != "default":
        raise _refuse(context, step, f"set_output(transform={config['transform']!r}) is not compiled")


def _elementwise(step: Any, columns: Columns, context: Context) -> tuple[CompiledArrays, Columns]:
    """The scaler's in-place operations, in the order its transform applies them."""
    operations: list[tuple[str, Any]] = []
    clip: tuple[float, ...] = ()
    edges: list[NDArray[np.float64]] = []
    if isinstance(step, StandardScaler):
        if step.with_mean:
            operations.append(("subtract", step.mean_))
            edges.append(step.mean_)
        if step.with_std:
            operations.append(("divide", step.scale_))
    elif isinstance(step, MinMaxScaler):
        operations += [("multiply", step.scale_), ("add", step.min_)]
        edges += [step.data_min_, step.data_max_]
        clip = tuple(step.feature_range) if step.clip else ()
    elif isinstance(step, MaxAbsScaler):
        operations.append(("divide", step.scale_))
        edges.append(step.max_abs_)
        clip = (-1.0, 1.0) if step.clip else ()
    else:
        if step.with_centering:
            operations.append(("subtract", step.center_))
            edges.append(step.center_)
        if step.with_scaling:
            operations.append(("divide", step.scale_))
    for values in edges:
        for source, value in zip(columns.sources, values, strict=True):
            if source is not None:
                context.probes.edges.setdefault(source, set()).add(float(value))
    arrays: CompiledArrays = {
        "n_features": np.array(step.n_features_in_),
        "operations": np.array([name for name, _ in operations], dtype=str),
        "clip": np.array(clip, dtype=np.float64),
    }
    for index, (_, operand) in enumerate(operations):
        arrays[f"operand_{index}"] = np.asarray(operand, dtype=np.float64)
    return {"step": np.array("elementwise"), **arrays}, columns


def _imputer(step: Any, columns: Columns, context: Context) -> tuple[CompiledArrays, Columns]:
    if not is_missing(step.missing_values):
        raise _refuse(context, step, f"missing_values={step.missing_values!r}; only NaN compiles")
    if step._fit_dtype.kind == "O":
        conversion = "object"
    elif step.strategy in ("mean", "median"):
        conversion = "float"
    else:
        conversion = "keep"
    statistics = np.asarray(step.statistics_)
    valid = (
        np.ones(statistics.shape, dtype=bool)
        if step.keep_empty_features
        else ~np.array([is_missing(value) for value in statistics], dtype=bool)
    )
    kept = np.flatnonzero(valid)
    fill = statistics[valid].astype(step._fill_dtype, copy=False)
    indicator = step.indicator_.features_ if step.add_indicator else np.array([], dtype=np.intp)
    arrays: CompiledArrays = {
        "step": np.array("imputer"),
        "n_features": np.array(step.n_features_in_),
        "conversion": np.array(conversion),
        "drops_columns": np.array(not valid.all()),
        "kept": kept.astype(np.int64),
        "add_indicator": np.array(bool(step.add_indicator)),
        "indicator": np.asarray(indicator, dtype=np.int64),
    }
    if conversion == "object":
        arrays |= object_arrays(fill, "statistics", f"{context.path}.statistics_")
    else:
        arrays["statistics"] = fill
    context.probes.imputed.update(source for source in columns.sources if source is not None)
    output = columns.take(kept.tolist())
    flagged = columns.take(np.asarray(indicator).tolist())
    return arrays, Columns(
        output.labels + [f"missing {label}" for label in flagged.labels], output.sources + [None] * len(flagged.labels)
    )


def _unknown_value(categories: NDArray[Any]) -> Any:
    known = [value for value in categories.tolist() if not is_missing(value)]
    if categories.dtype.kind in "iuf":
        return float(max(known, default=0.0)) + 1.0
    unknown = "unknown"
    while unknown in known:
        unknown += "?"
    return unknown


def _encoder(step: Any, columns: Columns, context: Context) -> tuple[CompiledArrays, Columns]:
    if np.dtype(step.dtype) != np.float64:
        raise _refuse(context, step, f"dtype={np.dtype(step.dtype)}; only float64 compiles")
    one_hot = isinstance(step, OneHotEncoder)
    if one_hot and step.sparse_output and not context.sparse_allowed:
        raise _refuse(
            context, step, "sparse_output=True feeds a sparse matrix to the next step; use sparse_output=False"
        )
    categories: list[NDArray[Any]] = list(step.categories_)
    widths = list(step._n_features_outs) if one_hot else [1] * len(categories)
    offsets = np.concatenate([[0], np.cumsum(widths)]).astype(np.int64)
    unknown_is_error = step.handle_unknown == "error"
    # One row per category (columns with fewer categories repeat their last), then an unknown row.
    table_rows = max(len(column) for column in categories)
    probe = np.empty((table_rows + 1, len(categories)), dtype=object)
    for index, column in enumerate(categories):
        probe[:table_rows, index] = [column[min(row, len(column) - 1)] for row in range(table_rows)]
        probe[table_rows, index] = _unknown_value(column)
    with warnings.catch_warnings():
        # OneHotEncoder warns when it ignores unknown categories: that is what is recorded here.
        warnings.simplefilter("ignore", UserWarning)
        known_rows = step.transform(probe[:table_rows])
        unknown_row = np.zeros((1, offsets[-1])) if unknown_is_error else step.transform(probe[table_rows:])
    blocks = np.vstack([np.asarray(_dense(known_rows)), np.asarray(_dense(unknown_row))])
    if blocks.shape[1] != offsets[-1]:
        raise _refuse(context, step, f"output of {blocks.shape[1]} columns, expected {offsets[-1]}")
    arrays: CompiledArrays = {
        "step": np.array("encoder"),
        "n_features": np.array(len(categories)),
        "labels": np.array(columns.labels, dtype=str),
        "offsets": offsets,
        "unknown_is_error": np.full(len(categories), unknown_is_error),
    }
    for index, column in enumerate(categories):
        rows = np.concatenate([np.arange(len(column)), [table_rows]])
        arrays[f"table_{index}"] = np.ascontiguousarray(blocks[rows, offsets[index] : offsets[index + 1]])
        numeric = column.dtype.kind in "iuf"
        arrays[f"kind_{index}"] = np.array("number" if numeric else "string")
        if numeric:
            arrays[f"categories_{index}"] = column
        else:
            arrays |= object_arrays(column.astype(object), f"categories_{index}", f"{context.path}.categories_")
        source = columns.sources[index]
        if source is not None:
            context.probes.categories[source] = column.tolist()
            context.probes.unknown_allowed[source] = not unknown_is_error
    labels = [f"{columns.labels[index]}:{slot}" for index, width in enumerate(widths) for slot in range(width)]
    return arrays, Columns(labels, [None] * len(labels))


def _dense(matrix: Any) -> Any:
    return matrix.toarray() if hasattr(matrix, "toarray") else matrix


def _sequence(step: Any, columns: Columns, context: Context) -> tuple[CompiledArrays, Columns]:
    kept = [(name, inner) for name, inner in step.steps if inner not in SKIPPED]
    arrays: CompiledArrays = {"step": np.array("sequence"), "n_steps": np.array(len(kept))}
    for index, (name, inner) in enumerate(kept):
        inner_context = Context(
            path=f"{context.path}/{name}",
            prefix=f"steps/{index}/",
            probes=context.probes,
            sparse_allowed=context.sparse_allowed and index == len(kept) - 1,
        )
        inner_arrays, columns = compile_step(inner, columns, inner_context)
        arrays |= inner_arrays
    return arrays, columns


def _passes_through(transformer: Any) -> bool:
    """The identity FunctionTransformer a fitted ColumnTransformer puts in place of 'passthrough'
    (its transformers_ never hold that word; 'drop' is skipped before)."""
    identity = isinstance(transformer, FunctionTransformer) and transformer.func is None
    return identity and not transformer.validate


def _column_transformer(step: Any, columns: Columns, context: Context) -> tuple[CompiledArrays, Columns]:
    # One that drops every column returns its dense n x 0 output before it sets sparse_output_.
    if getattr(step, "sparse_output_", False):
        raise _refuse(context, step, "its output is a sparse matrix; set sparse_threshold=0")
    if step.transformer_weights:
        raise _refuse(context, step, "transformer_weights are not compiled")
    arrays: CompiledArrays = {"step": np.array("columns"), "n_features": np.array(step.n_features_in_)}
    outputs = Columns([], [])
    branches = 0
    for name, transformer, selection in step.transformers_:
        indices = [int(index) for index in step._transformer_to_input_indices[name]]
        if transformer == "drop" or not indices:
            continue
        if np.isscalar(selection):
            raise _refuse(context, step, f"transformer {name!r} selects a scalar column (1-D input)")
        branch = Context(f"{context.path}/{name}", f"branches/{branches}/", context.probes, sparse_allowed=True)
        if _passes_through(transformer):
            branch_arrays: CompiledArrays = {branch.prefix + "step": np.array("passthrough")}
            branch_columns = columns.take(indices)
        else:
            branch_arrays, branch_columns = compile_step(transformer, columns.take(indices), branch)
        arrays[branch.prefix + "columns"] = np.array(indices, dtype=np.int64)
        arrays |= branch_arrays
        outputs = Columns(outputs.labels + branch_columns.labels, outputs.sources + branch_columns.sources)
        branches += 1
    arrays["n_branches"] = np.array(branches)
    return arrays, outputs


StepCompiler = Callable[[Any, Columns, Context], tuple[CompiledArrays, Columns]]
STEP_COMPILERS: dict[type, StepCompiler] = {
    StandardScaler: _elementwise,
    MinMaxScaler: _elementwise,
    MaxAbsScaler: _elementwise,
    RobustScaler: _elementwise,
    SimpleImputer: _imputer,
    OneHotEncoder: _encoder,
    OrdinalEncoder: _encoder,
    Pipeline: _sequence,
    ColumnTransformer: _column_transformer,
}


def compile_step(step: Any, columns: Columns, context: Context) -> tuple[CompiledArrays, Columns]:
    """The step's arrays under `context.prefix`, and the columns it outputs."""
    compiler = STEP_COMPILERS.get(type(step))
    if compiler is None:
        supported = ", ".join(sorted(kind.__name__ for kind in STEP_COMPILERS))
        raise _refuse(context, step, f"no compiled engine for this step; supported: {supported}, passthrough, drop")
    _dense_output(step, context)
    arrays, columns = compiler(step, columns, context)
    if STEP_KEY not in arrays:
        raise TypeError(f"the compiler of {type(step).__name__} did not name its step kind")
    return {context.prefix + key: value for key, value in arrays.items()}, columns


def _first_step(pipeline: Any) -> Any:
    """The step that sees the pipeline's input (None if every step is skipped): scikit-learn's
    Pipeline reads n_features_in_ and feature_names_in_ off its first step, which has neither
    when it is 'passthrough' or None."""
    for _, step in pipeline.steps:
        first = _first_step(step) if type(step) is Pipeline else step
        if first not in SKIPPED:
            return first
    return None


def _input_columns(estimator: Any) -> Columns:
    first = _first_step(estimator)
    count = int(first.n_features_in_)
    names = getattr(first, "feature_names_in_", None)
    labels = [str(name) for name in names] if names is not None else [f"column {index}" for index in range(count)]
    return Columns(labels, list(range(count)))


def _final(estimator: Any) -> Any:
    name, final = estimator.steps[-1]
    if final in SKIPPED:
        raise UnsupportedEstimatorError(f"the pipeline ends in {final!r} (step {name!r}), not an estimator")
    return final


def _transform_steps(estimator: Any, prefix: str) -> tuple[CompiledArrays, Probes]:
    """The arrays of every step before the final estimator, and what they say about probes."""
    probes = Probes()
    steps = [(name, step) for name, step in estimator.steps[:-1] if step not in SKIPPED]
    arrays: CompiledArrays = {prefix + "n_steps": np.array(len(steps))}
    columns = _input_columns(estimator)
    for index, (name, step) in enumerate(steps):
        step_arrays, columns = compile_step(step, columns, Context(name, f"{prefix}steps/{index}/", probes))
        arrays |= step_arrays
    return arrays, probes


def _final_compiler(estimator: Any) -> Compiler:
    # Imported here: build.engines imports this module to register it.
    from build.engines import compiler_for

    final = _final(estimator)
    try:
        return compiler_for(final)
    except UnsupportedEstimatorError:
        raise UnsupportedEstimatorError(
            f"final step {estimator.steps[-1][0]!r} ({type(final).__name__}): no compiled engine for it"
        ) from None


def unsupported_reason(estimator: Any) -> str | None:
    """Why the pipeline cannot be compiled (naming the step and its class), or None if it can."""
    if type(estimator) is not Pipeline:
        return f"{type(estimator).__name__} is not a Pipeline"
    try:
        _final_compiler(estimator)
        _transform_steps(estimator, "")
    except UnsupportedEstimatorError as error:
        return str(error)
    return None


def compile_pipeline(estimator: Any, prefix: str) -> CompiledArrays:
    reason = unsupported_reason(estimator)
    if reason is not None:
        raise UnsupportedEstimatorError(reason)
    arrays, _ = _transform_steps(estimator, prefix)
    final = _final_compiler(estimator).compile(_final(estimator), prefix + "final/")
    return {
        prefix + "engine": np.array("pipeline"),
        prefix + "format_version": np.array(FORMAT_VERSION),
        prefix + "n_features": np.array(_first_step(estimator).n_features_in_),
        **arrays,
        **final,
    }


def guarantee(estimator: Any) -> Guarantee:
    """The final estimator's: every preprocessing step is comparisons and IEEE arithmetic, which
    give the same bits anywhere, so they never weaken it."""
    return _final_compiler(estimator).guarantee(_final(estimator))


def _accepted(estimator: Any, rows: NDArray[Any]) -> bool:
    """Whether the pipeline answers these rows; a probe it refuses (say NaN in a column that is
    also used unimputed) tests nothing, and its refusal is tested elsewhere."""
    try:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            as_fitted(estimator).predict(rows)
    except ValueError:
        return False
    return True


def _varied(base: NDArray[Any], column: int, values: list[Any]) -> NDArray[Any]:
    rows = np.repeat(base[None, :], len(values), axis=0)
    rows[:, column] = np.array(values, dtype=rows.dtype)
    return rows


def pipeline_probes(estimator: Any, reference_rows: NDArray[Any]) -> NDArray[Any]:
    """Rows in the pipeline's input space: the reference rows, random rows around them, every
    category of every encoded column (and an unknown one where it is accepted), NaN in every
    imputed column, the scalers' centres and ranges with their float neighbours, extremes."""
    rng = np.random.default_rng(PROBE_SEED)
    reference = np.asarray(reference_rows)
    _, probes = _transform_steps(estimator, "")
    categorical = set(probes.categories)
    numeric = [column for column in range(reference.shape[1]) if column not in categorical]
    base = reference[0].copy()
    random_rows = reference[rng.integers(len(reference), size=RANDOM_PROBES)].copy()
    for column in numeric:
        values = reference[:, column].astype(np.float64)
        spread = float(np.nanstd(values)) + 1.0 if not np.isnan(values).all() else 1.0
        noise = rng.normal(size=RANDOM_PROBES) * 3 * spread
        random_rows[:, column] = random_rows[:, column].astype(np.float64) + noise
    for column, categories in probes.categories.items():
        known = [value for value in categories if not is_missing(value)]
        # A column all missing in training has no category to draw: its random rows keep it missing.
        if known:
            random_rows[:, column] = np.array(
                [known[i] for i in rng.integers(len(known), size=RANDOM_PROBES)], dtype=object
            )
    blocks = [reference, random_rows]
    for column, categories in probes.categories.items():
        unknown = [_unknown_value(np.asarray(categories))] if probes.unknown_allowed[column] else []
        blocks.append(_varied(base, column, categories + unknown))
    for column in sorted(probes.imputed):
        blocks.append(_varied(base, column, [np.nan]))
    if probes.imputed:
        every = base.copy()
        every[sorted(probes.imputed)] = np.nan
        blocks.append(every[None, :])
    for column in numeric:
        edges = np.array(sorted(probes.edges.get(column, set())), dtype=np.float64)
        values = np.concatenate([edges, np.nextafter(edges, np.inf), np.nextafter(edges, -np.inf), EXTREMES])
        blocks.append(_varied(base, column, values.tolist()))
    accepted = [block for block in blocks if _accepted(estimator, block)]
    return np.vstack(accepted)


PIPELINE = Compiler(
    name="pipeline",
    # Every Pipeline is this compiler's: one it cannot compile is refused with the step that stops it.
    supports=lambda estimator: type(estimator) is Pipeline,
    compile=compile_pipeline,
    guarantee=guarantee,
    probe_rows=pipeline_probes,
)

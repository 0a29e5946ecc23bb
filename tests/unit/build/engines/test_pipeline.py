"""Pipelines of scalers, imputers and encoders compiled to numpy answer bit for bit as
scikit-learn does, refuse what they cannot reproduce, and report unknown categories clearly."""

from __future__ import annotations

import io
import re
from typing import Any

import numpy as np
import pandas
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import (
    FunctionTransformer,
    MaxAbsScaler,
    MinMaxScaler,
    OneHotEncoder,
    OrdinalEncoder,
    PolynomialFeatures,
    QuantileTransformer,
    RobustScaler,
    StandardScaler,
)
from sklearn.svm import SVC
from threadpoolctl import threadpool_limits

from build.engines import ExactnessError, UnsupportedEstimatorError, check_exactness, compile_estimator, compiler_for
from build.engines.base import serialize
from build.engines.pipeline import PIPELINE, STEP_COMPILERS, unsupported_reason
from serving.engines import load_engine
from serving.engines.errors import NonFiniteInputError, UnknownCategoryError
from serving.engines.preprocessing import load_step

COLORS = ["red", "green", "blue", "teal"]
SIZES = ["S", "M", "L"]


def round_trip(arrays: dict[str, Any]) -> dict[str, Any]:
    with np.load(io.BytesIO(serialize(arrays)), allow_pickle=False) as stored:
        return {name: stored[name] for name in stored.files}


def mixed_rows(seed: int, count: int) -> np.ndarray:
    """Three numbers and two categories per row, as the API passes them: an object array of
    floats and Python strings, NaN where a value is missing."""
    rng = np.random.default_rng(seed)
    numbers = rng.normal(size=(count, 3)) * [1.0, 10.0, 100.0] + [0.0, 5.0, -50.0]
    numbers[rng.random((count, 3)) < 0.1] = np.nan
    colors = rng.choice(COLORS, size=count, p=[0.5, 0.3, 0.15, 0.05]).astype(object)
    colors[rng.random(count) < 0.1] = np.nan
    rows = np.empty((count, 5), dtype=object)
    rows[:, :3] = numbers
    rows[:, 3] = colors
    rows[:, 4] = rng.choice(SIZES, size=count).astype(object)
    return rows


def target(rows: np.ndarray, task: str) -> np.ndarray:
    score = np.nan_to_num(rows[:, 0].astype(float)) + (rows[:, 4] == "L") - (rows[:, 3] == "red")
    if task == "regression":
        return score * 3.0 + np.nan_to_num(rows[:, 1].astype(float))
    if task == "binary":
        return (score > 0).astype(int)
    return np.digitize(score, [-0.5, 0.5])


def preprocessor(encoder: Any, scaler: Any) -> ColumnTransformer:
    return ColumnTransformer(
        [
            ("numbers", make_pipeline(SimpleImputer(strategy="median", add_indicator=True), scaler), [0, 1]),
            ("color", make_pipeline(SimpleImputer(strategy="most_frequent"), encoder), [3]),
            ("size", OrdinalEncoder(), [4]),
        ],
        remainder=make_pipeline(SimpleImputer(strategy="constant", fill_value=0.0), MinMaxScaler(clip=True)),
        sparse_threshold=0,
    )


ENCODERS = [
    OneHotEncoder(handle_unknown="ignore"),
    OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=25, sparse_output=False),
    OneHotEncoder(drop="first", sparse_output=False, max_categories=3),
    OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1, encoded_missing_value=-2),
]
SCALERS = [StandardScaler(), RobustScaler(), MaxAbsScaler(), MinMaxScaler()]


def assert_exact(pipeline: Pipeline, train: np.ndarray, held_out: np.ndarray) -> None:
    engine = load_engine(round_trip(compile_estimator(pipeline, "model/")), "model/")
    probes = compiler_for(pipeline).probe_rows(pipeline, train)
    datasets = {"train": train, "held-out": held_out, "probes": probes}
    assert check_exactness(pipeline, engine, datasets) == sum(len(rows) for rows in datasets.values())
    assert engine.n_features == train.shape[1]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(
    ("task", "final"),
    [
        ("binary", LogisticRegression(max_iter=1000)),
        ("multiclass", LogisticRegression(max_iter=1000)),
        ("regression", Ridge()),
        ("multiclass", RandomForestClassifier(n_estimators=5, random_state=0)),
        ("regression", RandomForestRegressor(n_estimators=5, random_state=0)),
    ],
    ids=["binary-logistic", "multiclass-logistic", "ridge", "forest-classifier", "forest-regressor"],
)
def test_column_transformer_pipelines_are_exact(seed: int, task: str, final: Any) -> None:
    rows = mixed_rows(seed, 300)
    pipeline = Pipeline([("prepare", preprocessor(ENCODERS[seed % 4], SCALERS[seed % 4])), ("model", final)])
    pipeline.fit(rows[:200], target(rows[:200], task))

    assert_exact(pipeline, rows[:200], rows[200:])
    expected = "bitwise-same-libraries" if isinstance(final, LogisticRegression | Ridge) else "bitwise-anywhere"
    assert compiler_for(pipeline).guarantee(pipeline) == expected


@pytest.mark.parametrize("encoder", ENCODERS[1:], ids=lambda encoder: repr(encoder).replace("\n", ""))
def test_every_encoder_configuration_is_exact(encoder: Any) -> None:
    rows = mixed_rows(3, 300)
    prepare = ColumnTransformer([("color", encoder, [3, 4])], remainder=SimpleImputer(), sparse_threshold=0)
    pipeline = make_pipeline(prepare, LogisticRegression(max_iter=1000)).fit(rows[:200], target(rows[:200], "binary"))

    assert_exact(pipeline, rows[:200], rows[200:])


@pytest.mark.parametrize("scaler", [*SCALERS, StandardScaler(with_mean=False), MaxAbsScaler(clip=True)], ids=repr)
def test_numeric_pipelines_take_float_rows(scaler: Any) -> None:
    rows = mixed_rows(4, 300)[:, :3].astype(np.float64)
    rows[:, 2] = 7.0  # a constant column: zero variance, zero range
    pipeline = make_pipeline(SimpleImputer(strategy="mean"), scaler, Ridge())
    pipeline.fit(rows[:200], np.nan_to_num(rows[:200, 0]) * 2)

    assert_exact(pipeline, rows[:200], rows[200:])


def test_unknown_category_is_refused_with_the_feature_value_and_known_categories() -> None:
    rows = mixed_rows(5, 200)
    prepare = ColumnTransformer([("categories", OneHotEncoder(sparse_output=False), [3, 4])], sparse_threshold=0)
    pipeline = make_pipeline(prepare, LogisticRegression()).fit(rows, target(rows, "binary"))
    engine = load_engine(compile_estimator(pipeline))
    unseen = rows[:3].copy()
    unseen[1, 4] = "XXL"

    with pytest.raises(ValueError, match="Found unknown categories"):
        pipeline.predict(unseen)
    with pytest.raises(UnknownCategoryError) as refused:
        engine.predict(unseen)
    assert str(refused.value) == "unknown category 'XXL' for feature 'column 4'; known: 'L', 'M', 'S'"


def test_unknown_category_message_is_bounded() -> None:
    categories = np.array([[f"category-{index:03d}-{'x' * 50}"] for index in range(40)], dtype=object)
    pipeline = make_pipeline(OrdinalEncoder(), Ridge()).fit(categories, np.arange(40.0))
    engine = load_engine(compile_estimator(pipeline))

    with pytest.raises(UnknownCategoryError) as refused:
        engine.predict(np.array([["y" * 10_000]], dtype=object))
    message = str(refused.value)
    assert message.startswith("unknown category 'yyyy")
    assert "for feature 'column 0'; known: 'category-000-xxx..., 'category-001-xxx..., " in message
    assert message.endswith(" and 30 more")
    assert len(message) < 400


def test_a_tampered_step_is_caught_by_the_gate() -> None:
    rows = mixed_rows(6, 200)
    pipeline = Pipeline([("prepare", preprocessor(ENCODERS[0], StandardScaler())), ("model", LogisticRegression())])
    pipeline.fit(rows, target(rows, "binary"))
    arrays = compile_estimator(pipeline)
    arrays["steps/0/branches/0/steps/1/operand_0"] = np.nextafter(arrays["steps/0/branches/0/steps/1/operand_0"], 0)

    with pytest.raises(ExactnessError, match="rows: predict_proba differs"):
        check_exactness(pipeline, load_engine(arrays), {"rows": rows})


NUMBERS = np.random.default_rng(0).normal(size=(60, 3))
LABELS = (NUMBERS[:, 0] > 0).astype(int)


@pytest.mark.parametrize(
    ("pipeline", "reason"),
    [
        (
            make_pipeline(QuantileTransformer(n_quantiles=10), LogisticRegression()),
            "step 'quantiletransformer' (QuantileTransformer): no compiled engine for this step; supported: "
            "ColumnTransformer, MaxAbsScaler, MinMaxScaler, OneHotEncoder, OrdinalEncoder, Pipeline, RobustScaler, "
            "SimpleImputer, StandardScaler, passthrough, drop",
        ),
        (
            make_pipeline(
                ColumnTransformer([("poly", make_pipeline(StandardScaler(), PolynomialFeatures()), [0, 1])]),
                LogisticRegression(),
            ),
            "step 'columntransformer/poly/polynomialfeatures' (PolynomialFeatures): no compiled engine",
        ),
        (make_pipeline(StandardScaler(), MinMaxScaler(), SVC()), "final step 'svc' (SVC): no compiled engine for it"),
        (
            make_pipeline(OneHotEncoder(handle_unknown="ignore"), LogisticRegression()),
            "step 'onehotencoder' (OneHotEncoder): sparse_output=True feeds a sparse matrix to the next step",
        ),
        (
            make_pipeline(ColumnTransformer([("one", OneHotEncoder(), [0])]), LogisticRegression()),
            "step 'columntransformer' (ColumnTransformer): its output is a sparse matrix",
        ),
        (
            make_pipeline(ColumnTransformer([("s", StandardScaler(), [0])], transformer_weights={"s": 2}), Ridge()),
            "step 'columntransformer' (ColumnTransformer): transformer_weights are not compiled",
        ),
        (
            make_pipeline(SimpleImputer(missing_values=-1.0), Ridge()),
            "step 'simpleimputer' (SimpleImputer): missing_values=-1.0; only NaN compiles",
        ),
        (
            make_pipeline(OrdinalEncoder(dtype=np.float32), Ridge()),
            "step 'ordinalencoder' (OrdinalEncoder): dtype=float32; only float64 compiles",
        ),
        (make_pipeline(StandardScaler(), "passthrough"), "the pipeline ends in 'passthrough'"),
    ],
    ids=["quantile", "nested", "svc", "sparse-one-hot", "sparse-columns", "weights", "minus-one", "float32", "end"],
)
def test_unsupported_steps_are_refused_by_name(pipeline: Pipeline, reason: str) -> None:
    features = np.round(NUMBERS * 2) if "Encoder" in repr(pipeline) else NUMBERS
    pipeline.fit(features, LABELS if not isinstance(pipeline.steps[-1][1], Ridge) else NUMBERS[:, 0])

    assert reason in (unsupported_reason(pipeline) or "")
    assert PIPELINE.supports(pipeline)
    with pytest.raises(UnsupportedEstimatorError, match=re.escape(reason)):
        PIPELINE.compile(pipeline, "")
    with pytest.raises(UnsupportedEstimatorError, match=re.escape(reason)):
        compile_estimator(pipeline)


@pytest.mark.parametrize("seed", [0, 1])
def test_encoded_numbers_and_most_frequent_numbers_are_exact(seed: int) -> None:
    rng = np.random.default_rng(seed)
    rows = np.column_stack([rng.integers(0, 4, 300).astype(float), rng.normal(size=300)])
    rows[rng.random(300) < 0.1, 0] = np.nan
    prepare = ColumnTransformer(
        [
            ("codes", OneHotEncoder(handle_unknown="ignore", sparse_output=False), [0]),
            ("levels", make_pipeline(SimpleImputer(strategy="most_frequent"), OrdinalEncoder()), [0]),
        ],
        remainder="passthrough",
    )
    pipeline = make_pipeline(prepare, LogisticRegression()).fit(rows[:200], (rows[:200, 1] > 0).astype(int))
    assert_exact(pipeline, rows[:200], rows[200:])

    engine = load_engine(compile_estimator(pipeline))
    unseen = rows[:2].copy()
    unseen[0, 0] = 9.0  # ignored by the one-hot encoder, refused by the ordinal one
    with pytest.raises(ValueError, match="Found unknown categories"):
        pipeline.predict(unseen)
    with pytest.raises(UnknownCategoryError) as refused:
        engine.predict(unseen)
    assert str(refused.value) == "unknown category 9.0 for feature 'column 0'; known: 0.0, 1.0, 2.0, 3.0"
    unseen[0, 0] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        pipeline.predict(unseen)
    with pytest.raises(NonFiniteInputError, match="input contains infinity"):
        engine.predict(unseen)


# The pipeline compiler's probes and choices, seen from outside: an exact engine passes the gate whatever the probes,
# so only a test of the probes themselves notices them shrinking. What they must hold is pipeline_probes' promise: the
# reference rows, random rows around them, every category of every encoded column (and an unknown one where the
# encoder accepts it), NaN in every imputed column, the scalers' centres and ranges with their float neighbours, and
# extremes. The expected values are the fitted steps' own attributes (scikit-learn's), or literals.


EXTREMES = (0.0, -0.0, 1e10, -1e10, 1e300, -1e300)
N_RANDOM = 400
PROBE_COLORS = ["red", "green", "blue"]
PROBE_SIZES = ["S", "M", "L", "XL"]


def reference_rows(count: int = 120) -> np.ndarray:
    """Four numbers of spread about 1 and two categories, as the API passes them (an object array)."""
    rng = np.random.default_rng(7)
    rows = np.empty((count, 6), dtype=object)
    rows[:, :4] = rng.normal(size=(count, 4)) + np.array([0.5, -2.0, 3.0, 10.0])
    rows[:, 4] = rng.choice(PROBE_COLORS, size=count)
    rows[:, 5] = rng.choice(PROBE_SIZES, size=count)
    return rows


def fitted_pipeline() -> Pipeline:
    rows = reference_rows()
    prepare = ColumnTransformer(
        [
            ("mean", make_pipeline(SimpleImputer(), StandardScaler()), [0]),
            ("range", MinMaxScaler(), [1]),
            ("abs", MaxAbsScaler(), [2]),
            ("robust", RobustScaler(), [3]),
            (
                "color",
                make_pipeline(SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")),
                [4],
            ),
            ("size", OrdinalEncoder(), [5]),
        ],
        sparse_threshold=0,
    )
    return Pipeline([("prepare", prepare), ("model", LogisticRegression())]).fit(rows, rows[:, 0] > 0.5)


def varied(probes: np.ndarray, base: np.ndarray, column: int) -> list[Any]:
    """The values of `column` in the probe rows that equal `base` in every other column."""
    others = [index for index in range(probes.shape[1]) if index != column]
    same = np.array([all(row[index] == base[index] for index in others) for row in probes])
    return list(probes[same, column])


def holds(values: list[Any], expected: float) -> bool:
    """Whether `expected` is among the values, as the same float with the same sign."""
    return any(
        isinstance(value, float) and value == expected and np.signbit(value) == np.signbit(expected) for value in values
    )


@pytest.fixture(scope="module")
def probed() -> tuple[Pipeline, np.ndarray, np.ndarray]:
    pipeline = fitted_pipeline()
    reference = reference_rows()
    return pipeline, reference, compiler_for(pipeline).probe_rows(pipeline, reference)


def test_the_probes_start_with_the_reference_rows_then_random_rows_around_them(
    probed: tuple[Pipeline, np.ndarray, np.ndarray],
) -> None:
    _, reference, probes = probed
    assert probes[: len(reference)].tolist() == reference.tolist()

    random_rows = probes[len(reference) : len(reference) + N_RANDOM]
    numbers = reference[:, :4].astype(np.float64)
    # Three spreads (the reference's standard deviation plus one) of noise around reference rows.
    spread = random_rows[:, :4].astype(np.float64).std(axis=0) / (numbers.std(axis=0) + 1.0)
    assert np.all((spread > 2.5) & (spread < 3.5)), spread
    # The categorical columns keep known categories, every one of them drawn.
    assert set(random_rows[:, 4]) == set(PROBE_COLORS)
    assert set(random_rows[:, 5]) == set(PROBE_SIZES)


def test_the_probes_vary_each_encoded_column_over_its_categories_and_an_unknown_one_where_accepted(
    probed: tuple[Pipeline, np.ndarray, np.ndarray],
) -> None:
    _, reference, probes = probed
    base = reference[0]

    colors = varied(probes, base, 4)
    assert set(PROBE_COLORS) <= set(colors)
    # handle_unknown="ignore" answers an unknown color: one is probed.
    assert {value for value in colors if isinstance(value, str)} - set(PROBE_COLORS)
    # The ordinal encoder refuses unknown sizes: no probe holds one, anywhere.
    assert set(varied(probes, base, 5)) == set(PROBE_SIZES)
    assert set(probes[:, 5]) == set(PROBE_SIZES)


def test_the_probes_put_nan_in_each_imputed_column_alone_and_in_all_of_them_at_once(
    probed: tuple[Pipeline, np.ndarray, np.ndarray],
) -> None:
    _, reference, probes = probed
    base = reference[0]

    for column in (0, 4):
        assert any(value != value for value in varied(probes, base, column)), column
    both = [row for row in probes if row[0] != row[0] and row[4] != row[4]]
    assert [row[[1, 2, 3, 5]].tolist() for row in both] == [base[[1, 2, 3, 5]].tolist()]
    # The columns no imputer sees get no NaN.
    assert not any(value != value for value in probes[:, [1, 2, 3, 5]].ravel())


def test_the_probes_hold_each_scalers_centre_and_range_with_their_neighbours_and_the_extremes(
    probed: tuple[Pipeline, np.ndarray, np.ndarray],
) -> None:
    pipeline, reference, probes = probed
    base = reference[0]
    steps = pipeline.named_steps["prepare"].named_transformers_
    edges = {
        0: [steps["mean"].named_steps["standardscaler"].mean_[0]],
        1: [steps["range"].data_min_[0], steps["range"].data_max_[0]],
        2: [steps["abs"].max_abs_[0]],
        3: [steps["robust"].center_[0]],
    }

    for column, values in edges.items():
        probed_values = varied(probes, base, column)
        for edge in values:
            for value in (edge, np.nextafter(edge, np.inf), np.nextafter(edge, -np.inf)):
                assert holds(probed_values, float(value)), (column, value)
        for extreme in EXTREMES:
            assert holds(probed_values, extreme), (column, extreme)


def test_the_probes_leave_out_rows_the_pipeline_refuses_and_keep_the_rest() -> None:
    """Column 0 is imputed on one branch and scaled as it is on another: a NaN there reaches the
    final estimator, which refuses it, so no probe holds one; column 1 is imputed alone."""
    rows = reference_rows()[:, :2].astype(np.float64)
    prepare = ColumnTransformer(
        [("imputed", SimpleImputer(), [0, 1]), ("raw", StandardScaler(), [0])], sparse_threshold=0
    )
    pipeline = make_pipeline(prepare, LogisticRegression()).fit(rows, rows[:, 0] > 0.5)

    probes = compiler_for(pipeline).probe_rows(pipeline, rows)

    assert not np.isnan(probes[:, 0]).any()
    assert np.isnan(probes[:, 1]).any()
    pipeline.predict(probes)  # every probe is answered
    engine = load_engine(compile_estimator(pipeline))
    assert check_exactness(pipeline, engine, {"probes": probes}) == len(probes)


GAUSSIAN = np.random.default_rng(0).normal(size=(50, 3))


def one_column(rows: Any) -> np.ndarray:
    return np.asarray(rows, dtype=np.float64).reshape(-1, 1)


@pytest.mark.parametrize(
    ("pipeline", "reason"),
    [
        (
            make_pipeline(StandardScaler().set_output(transform="pandas"), Ridge()),
            "step 'standardscaler' (StandardScaler): set_output(transform='pandas') is not compiled",
        ),
        (
            make_pipeline(ColumnTransformer([("one", FunctionTransformer(one_column), 0)]), Ridge()),
            "step 'columntransformer' (ColumnTransformer): transformer 'one' selects a scalar column (1-D input)",
        ),
        (
            make_pipeline(ColumnTransformer([("checked", FunctionTransformer(validate=True), [0])]), Ridge()),
            "step 'columntransformer/checked' (FunctionTransformer): no compiled engine for this step",
        ),
    ],
    ids=["pandas-output", "scalar-column", "validating-function"],
)
def test_what_the_engine_does_not_reproduce_is_refused_by_step_and_reason(pipeline: Pipeline, reason: str) -> None:
    pipeline.fit(GAUSSIAN, GAUSSIAN[:, 0])

    assert (unsupported_reason(pipeline) or "").startswith(reason)
    with pytest.raises(UnsupportedEstimatorError) as refused:
        compile_estimator(pipeline)
    assert str(refused.value).startswith(reason)


def test_only_a_pipeline_is_the_pipeline_compilers() -> None:
    ridge = Ridge().fit(GAUSSIAN, GAUSSIAN[:, 0])

    assert unsupported_reason(ridge) == "Ridge is not a Pipeline"
    assert not PIPELINE.supports(ridge)
    assert compiler_for(ridge).name == "linear"


@pytest.mark.parametrize(
    "prepare",
    [
        ColumnTransformer(
            [("scaled", StandardScaler(), [0]), ("dropped", "drop", [1]), ("empty", MinMaxScaler(), [])],
            remainder="passthrough",
        ),
        ColumnTransformer([("identity", FunctionTransformer(), [1, 0]), ("scaled", RobustScaler(), [2])]),
        make_pipeline("passthrough", StandardScaler(), None, MaxAbsScaler()),
    ],
    ids=["drop-and-empty", "identity-function", "skipped-steps"],
)
def test_dropped_empty_identity_and_skipped_steps_compile_exactly(prepare: Any) -> None:
    pipeline = make_pipeline(prepare, Ridge()).fit(GAUSSIAN, GAUSSIAN @ [1.0, -2.0, 0.5])

    assert compiler_for(pipeline).name == "pipeline"
    assert unsupported_reason(pipeline) is None
    engine = load_engine(compile_estimator(pipeline))
    probes = compiler_for(pipeline).probe_rows(pipeline, GAUSSIAN)
    assert check_exactness(pipeline, engine, {"rows": GAUSSIAN, "probes": probes}) == len(GAUSSIAN) + len(probes)


def test_a_step_compiler_that_does_not_name_its_step_kind_is_a_programming_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(STEP_COMPILERS, StandardScaler, lambda step, columns, context: ({}, columns))
    pipeline = make_pipeline(StandardScaler(), Ridge()).fit(GAUSSIAN, GAUSSIAN[:, 0])

    with pytest.raises(TypeError) as refused:
        compile_estimator(pipeline)
    assert str(refused.value) == "the compiler of StandardScaler did not name its step kind"


def test_a_pipeline_that_starts_with_a_skipped_step_compiles_exactly() -> None:
    """scikit-learn's Pipeline has no n_features_in_ when its first step is 'passthrough': the
    compiler reads the input width off the first step that sees the rows."""
    pipeline = Pipeline([("skip", "passthrough"), ("scale", StandardScaler()), ("model", Ridge())])
    pipeline.fit(GAUSSIAN, GAUSSIAN[:, 1])

    engine = load_engine(compile_estimator(pipeline))
    assert engine.n_features == 3
    probes = compiler_for(pipeline).probe_rows(pipeline, GAUSSIAN)
    assert check_exactness(pipeline, engine, {"rows": GAUSSIAN, "probes": probes}) == len(GAUSSIAN) + len(probes)


# scikit-learn warns at every transform that it drops the empty column: that is what is tested.
@pytest.mark.filterwarnings("ignore:Skipping features without any observed values:UserWarning")
@pytest.mark.parametrize("strategy", ["mean", "median", "most_frequent", "constant"])
@pytest.mark.parametrize("keep_empty", [False, True], ids=["drop-empty", "keep-empty"])
@pytest.mark.parametrize("indicator", [False, True], ids=["", "indicator"])
def test_imputers_with_an_empty_column_and_indicators_compile_exactly(
    strategy: str, keep_empty: bool, indicator: bool
) -> None:
    """Column 1 is never seen in training: the imputer drops it unless keep_empty_features; only
    columns 0 and 1 had missing values, and only they get an indicator."""
    rows = GAUSSIAN.copy()
    rows[::4, 0] = np.nan
    rows[:, 1] = np.nan
    imputer = SimpleImputer(
        strategy=strategy,
        keep_empty_features=keep_empty,
        add_indicator=indicator,
    )
    pipeline = make_pipeline(imputer, StandardScaler(), Ridge()).fit(rows, GAUSSIAN[:, 2])

    engine = load_engine(compile_estimator(pipeline))
    probes = compiler_for(pipeline).probe_rows(pipeline, rows)
    assert check_exactness(pipeline, engine, {"rows": rows, "probes": probes}) == len(rows) + len(probes)


@pytest.mark.parametrize(
    "encoder",
    [
        OneHotEncoder(handle_unknown="ignore", sparse_output=False),
        OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1),
    ],
    ids=["one-hot", "ordinal"],
)
def test_number_codes_get_an_unknown_code_probed_and_answered_as_scikit_learn_does(encoder: Any) -> None:
    rows = np.column_stack([np.arange(50) % 4.0, GAUSSIAN[:, 0]])  # codes 0, 1, 2, 3
    pipeline = make_pipeline(ColumnTransformer([("codes", encoder, [0])], remainder="passthrough"), Ridge())
    pipeline.fit(rows, GAUSSIAN[:, 1] + rows[:, 0])

    probes = compiler_for(pipeline).probe_rows(pipeline, rows)

    assert set(probes[:, 0]) - {0.0, 1.0, 2.0, 3.0}, "no unknown code probed"
    engine = load_engine(compile_estimator(pipeline))
    assert check_exactness(pipeline, engine, {"probes": probes}) == len(probes)


@pytest.mark.parametrize(
    ("final", "expected"),
    [
        # A regressor whose raw score is its prediction: comparisons and sums only.
        (HistGradientBoostingRegressor(max_iter=3), "bitwise-anywhere"),
        # A classifier's probabilities go through exp: the same libraries are needed.
        (HistGradientBoostingClassifier(max_iter=3), "bitwise-same-libraries"),
    ],
)
def test_a_pipelines_guarantee_is_its_final_estimators_own(final: Any, expected: str) -> None:
    """The scalers before it are IEEE arithmetic: the pipeline promises what its final estimator
    promises, which for boosting depends on the fitted estimator (its loss), not only its type."""
    rows = np.random.default_rng(3).normal(size=(120, 3))
    target = rows[:, 0] > 0 if isinstance(final, HistGradientBoostingClassifier) else rows[:, 0] * 2
    pipeline = make_pipeline(StandardScaler(), final)
    with threadpool_limits(1):
        pipeline.fit(rows, target)

    assert compiler_for(pipeline).guarantee(pipeline) == expected


@pytest.mark.parametrize(
    "seen",
    [
        ["unknown", "unknown?", "?", "red"],  # the first names tried for an unknown value are categories
        ["red", "green", np.nan],  # a missing value among the categories is not an unknown one
    ],
    ids=["named-unknown", "with-missing"],
)
def test_string_categories_get_a_value_that_is_none_of_them_answered_as_scikit_learn_does(seen: list[Any]) -> None:
    """The compiled encoder's unknown row is the encoder's answer for a value it never saw: for
    strings, a word none of the categories is (nor the missing value), and a row with a category
    no one trained on is then answered as scikit-learn answers it."""
    column = np.array([seen[index % len(seen)] for index in range(50)], dtype=object)
    rows = np.column_stack([column, GAUSSIAN[:, 0]]).astype(object)
    encoder = OneHotEncoder(handle_unknown="ignore", sparse_output=False)
    pipeline = make_pipeline(ColumnTransformer([("words", encoder, [0])], remainder="passthrough"), Ridge())
    pipeline.fit(rows, GAUSSIAN[:, 1])
    never_seen = np.array([["never seen", 1.5], ["unknown??", -2.0]], dtype=object)

    engine = load_engine(compile_estimator(pipeline))
    probes = compiler_for(pipeline).probe_rows(pipeline, rows)

    assert engine.predict(never_seen).tobytes() == pipeline.predict(never_seen).tobytes()
    assert check_exactness(pipeline, engine, {"rows": rows, "probes": probes}) == len(rows) + len(probes)


def test_number_categories_of_a_column_never_seen_get_an_unknown_code() -> None:
    """A column that is all missing in training has no known code (its only category is NaN):
    the unknown code probed is then 1.0, above the default 0, and compiling does not fail."""
    rows = np.column_stack([np.full(50, np.nan), GAUSSIAN[:50, 0]])
    encoder = OneHotEncoder(handle_unknown="ignore", sparse_output=False)
    pipeline = make_pipeline(ColumnTransformer([("codes", encoder, [0])], remainder="passthrough"), Ridge())
    pipeline.fit(rows, GAUSSIAN[:50, 1])

    engine = load_engine(compile_estimator(pipeline))
    probes = compiler_for(pipeline).probe_rows(pipeline, rows)

    assert 1.0 in set(probes[:, 0].tolist())
    assert check_exactness(pipeline, engine, {"rows": rows, "probes": probes}) == len(rows) + len(probes)


def test_a_sparse_encoder_at_the_end_of_a_nested_pipeline_is_refused_where_a_dense_input_is_needed() -> None:
    """Only a ColumnTransformer densifies its branches; a Pipeline nested at the top passes its
    last step's sparse matrix on to the final estimator, so that step is refused by its path."""
    inner = Pipeline([("impute", SimpleImputer(strategy="most_frequent")), ("encode", OneHotEncoder())])
    pipeline = Pipeline([("prepare", inner), ("model", LogisticRegression())])
    pipeline.fit(np.round(GAUSSIAN * 2), GAUSSIAN[:, 0] > 0)

    reason = "step 'prepare/encode' (OneHotEncoder): sparse_output=True feeds a sparse matrix to the next step"
    with pytest.raises(UnsupportedEstimatorError, match=re.escape(reason)):
        compile_estimator(pipeline)


def test_an_encoder_whose_output_is_not_as_wide_as_its_categories_is_refused() -> None:
    """The compiled encoder lays its table out by the widths the fitted encoder records; if its
    transform answered with another width (a scikit-learn change), the columns after it would be
    shifted, so compiling refuses, naming the step and both widths (4 and 3 categories: 7)."""
    rows = np.column_stack([np.arange(50) % 4.0, np.arange(50) % 3.0, GAUSSIAN[:, 0]])
    pipeline = make_pipeline(
        ColumnTransformer(
            [("codes", OneHotEncoder(handle_unknown="ignore", sparse_output=False), [0, 1])], remainder="passthrough"
        ),
        Ridge(),
    ).fit(rows, GAUSSIAN[:, 1])
    encoder = pipeline[0].named_transformers_["codes"]
    fitted_transform = encoder.transform
    encoder.transform = lambda features: fitted_transform(features)[:, :-1]

    reason = "step 'columntransformer/codes' (OneHotEncoder): output of 6 columns, expected 7"
    with pytest.raises(UnsupportedEstimatorError, match=f"^{re.escape(reason)}$"):
        compile_estimator(pipeline)


def test_integer_categories_are_compiled_as_numbers() -> None:
    """An encoder fitted on integers keeps int64 categories: they are numbers to the engine, and
    a code never seen is answered as scikit-learn answers it."""
    rows = np.column_stack([np.arange(50) % 4, np.arange(50) % 3])
    pipeline = make_pipeline(OneHotEncoder(sparse_output=False, handle_unknown="ignore"), Ridge())
    pipeline.fit(rows, GAUSSIAN[:, 0])
    never_seen = np.array([[7, 1], [0, -3]])

    arrays = compile_estimator(pipeline)
    engine = load_engine(arrays)

    assert pipeline[0].categories_[0].dtype == np.int64
    assert str(arrays["steps/0/kind_0"]) == "number"
    assert engine.predict(never_seen).tobytes() == pipeline.predict(never_seen).tobytes()


def test_categories_of_another_type_are_refused_naming_the_step() -> None:
    """Categories must be strings, floats or NaN: None among them is refused by the step's path."""
    column = np.array(["red", None, "green"] * 10, dtype=object)
    rows = np.column_stack([column, GAUSSIAN[:30, 0]]).astype(object)
    encoder = OneHotEncoder(handle_unknown="ignore", sparse_output=False)
    pipeline = make_pipeline(ColumnTransformer([("words", encoder, [0])], remainder="passthrough"), Ridge())
    pipeline.fit(rows, GAUSSIAN[:30, 1])

    reason = "columntransformer/words.categories_ holds values of type NoneType; only strings, floats and NaN compile"
    with pytest.raises(UnsupportedEstimatorError, match=f"^{re.escape(reason)}$"):
        compile_estimator(pipeline)


def test_a_column_transformers_outputs_keep_their_input_columns_for_the_steps_after_it() -> None:
    """Its outputs keep the input column each one came from: a scaler after a ColumnTransformer
    that swaps two columns puts its range on the probes of the input column it really sees."""
    swap = ColumnTransformer([("second", "passthrough", [1]), ("first", "passthrough", [0])])
    pipeline = Pipeline([("swap", swap), ("range", MinMaxScaler()), ("model", Ridge())])
    pipeline.fit(GAUSSIAN[:, :2] * [1.0, 100.0], GAUSSIAN[:, 2])

    probes = compiler_for(pipeline).probe_rows(pipeline, GAUSSIAN[:, :2] * [1.0, 100.0])

    scaler = pipeline.named_steps["range"]
    assert {scaler.data_min_[0], scaler.data_max_[0]} <= set(probes[:, 1].tolist())  # input column 1
    assert {scaler.data_min_[1], scaler.data_max_[1]} <= set(probes[:, 0].tolist())


def test_a_column_transformers_outputs_keep_their_labels_for_the_steps_after_it() -> None:
    """An encoder after a ColumnTransformer names the input column in its refusal of a category it
    never saw."""
    rows = np.column_stack([np.arange(50) % 3.0, np.arange(50) % 2.0])
    keep = ColumnTransformer([("first", "passthrough", [0]), ("second", "passthrough", [1])])
    pipeline = Pipeline([("keep", keep), ("encode", OrdinalEncoder()), ("model", Ridge())])
    pipeline.fit(rows, GAUSSIAN[:, 1])

    engine = load_engine(compile_estimator(pipeline))

    refused = "unknown category 7.0 for feature 'column 0'; known: 0.0, 1.0, 2.0"
    with pytest.raises(ValueError, match=f"^{re.escape(refused)}"):
        engine.predict(np.array([[7.0, 1.0]]))


def test_imputed_values_of_another_type_are_refused_naming_the_step() -> None:
    """A most-frequent imputer fitted on objects fills with what it saw most: Python integers
    there are neither strings nor floats, and compiling refuses them by the step's path."""
    column = np.array([1, 2, 2, np.nan] * 10, dtype=object)
    rows = np.column_stack([column, GAUSSIAN[:40, 0]]).astype(object)
    imputer = SimpleImputer(strategy="most_frequent")
    pipeline = make_pipeline(ColumnTransformer([("fill", imputer, [0])], remainder="passthrough"), Ridge())
    pipeline.fit(rows, GAUSSIAN[:40, 1])

    reason = "columntransformer/fill.statistics_ holds values of type int; only strings, floats and NaN compile"
    with pytest.raises(UnsupportedEstimatorError, match=f"^{re.escape(reason)}$"):
        compile_estimator(pipeline)


def test_a_column_transformer_that_drops_every_column_compiles_to_no_columns() -> None:
    """A ColumnTransformer whose every branch is dropped outputs n x 0 (and returns before it
    sets sparse_output_): nested in another one beside a kept column, it compiles and the engine
    answers as scikit-learn does, to the bit."""
    rows = np.random.default_rng(0).normal(size=(40, 2))
    nothing = ColumnTransformer([("dropped", "drop", [0])])
    pipeline = make_pipeline(ColumnTransformer([("nothing", nothing, [0]), ("kept", "passthrough", [1])]), Ridge())
    pipeline.fit(rows, rows[:, 1] * 3)

    engine = load_engine(compile_estimator(pipeline))
    probes = compiler_for(pipeline).probe_rows(pipeline, rows)

    assert pipeline[0].transform(rows).shape == (40, 1)
    assert check_exactness(pipeline, engine, {"rows": rows, "probes": probes}) == len(rows) + len(probes)


def test_a_number_column_with_one_category_is_encoded_as_scikit_learn_does() -> None:
    """One known code: a value is found or not by comparing it with that single category."""
    rows = np.column_stack([np.full(40, 2.0), GAUSSIAN[:40, 0]])
    encoder = OneHotEncoder(handle_unknown="ignore", sparse_output=False)
    pipeline = make_pipeline(ColumnTransformer([("codes", encoder, [0])], remainder="passthrough"), Ridge())
    pipeline.fit(rows, GAUSSIAN[:40, 1])
    asked = np.array([[2.0, 0.5], [3.0, 0.5], [-1.0, 0.5], [np.nan, 0.5]])

    engine = load_engine(compile_estimator(pipeline))

    assert engine.predict(asked).tobytes() == pipeline.predict(asked).tobytes()


def test_an_infinite_value_before_a_scaler_is_refused_with_the_engines_words() -> None:
    pipeline = make_pipeline(StandardScaler(), Ridge()).fit(GAUSSIAN, GAUSSIAN[:, 0])
    engine = load_engine(compile_estimator(pipeline))
    rows = GAUSSIAN[:2].copy()
    rows[1, 2] = np.inf

    refused = "input contains infinity, which this model does not accept"
    with pytest.raises(NonFiniteInputError, match=f"^{re.escape(refused)}$"):
        engine.predict(rows)


def test_rows_of_another_width_are_refused_by_the_pipeline_and_by_each_step() -> None:
    pipeline = make_pipeline(SimpleImputer(), StandardScaler(), Ridge()).fit(GAUSSIAN, GAUSSIAN[:, 0])
    arrays = compile_estimator(pipeline)
    engine = load_engine(arrays)
    imputer = load_step(arrays, "steps/0/")

    narrow = GAUSSIAN[:2, :2]
    refused = "expected rows of 3 features, got shape (2, 2)"
    with pytest.raises(ValueError, match=f"^{re.escape(refused)}$"):
        engine.predict(narrow)
    with pytest.raises(ValueError, match=f"^{re.escape(refused)}$"):
        imputer.transform(narrow)


def test_infinity_before_a_most_frequent_imputer_is_refused_as_scikit_learn_refuses_it() -> None:
    pipeline = make_pipeline(SimpleImputer(strategy="most_frequent"), Ridge()).fit(np.round(GAUSSIAN), GAUSSIAN[:, 0])
    engine = load_engine(compile_estimator(pipeline))
    rows = np.round(GAUSSIAN[:2])
    rows[0, 1] = np.inf
    with pytest.raises(ValueError, match=r"^Input X contains infinity"):
        pipeline.predict(rows)

    refused = "input contains infinity, which this model does not accept"
    with pytest.raises(NonFiniteInputError, match=f"^{re.escape(refused)}$"):
        engine.predict(rows)


def test_a_pipeline_fitted_on_a_dataframe_names_its_columns_in_refusals() -> None:
    frame = pandas.DataFrame({"colour": ["red", "blue", "green"] * 10, "size": GAUSSIAN[:30, 0]})
    encode = ColumnTransformer([("words", OrdinalEncoder(), ["colour"])], remainder="passthrough")
    pipeline = make_pipeline(encode, Ridge()).fit(frame, GAUSSIAN[:30, 1])
    engine = load_engine(compile_estimator(pipeline))

    refused = "unknown category 'mauve' for feature 'colour'; known: 'blue', 'green', 'red'"
    with pytest.raises(ValueError, match=f"^{re.escape(refused)}$"):
        engine.predict(np.array([["mauve", 1.0]], dtype=object))


@pytest.mark.parametrize(
    "color",
    [
        make_pipeline(SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")),
        OneHotEncoder(handle_unknown="ignore"),
    ],
    ids=["imputed", "nan-a-category"],
)
def test_the_random_probes_draw_each_encoded_columns_categories_evenly_and_never_a_missing_one(color: Any) -> None:
    """Random rows take an encoded column's known categories uniformly, not the reference's mix: a
    reference nine tenths red, with missing colors (filled by an imputer, or a category of the
    encoder's own), still gets random rows of every color about equally often, and none missing
    (missing values are probed apart, one column at a time)."""
    rng = np.random.default_rng(3)
    colors = np.array(["red"] * 108 + ["green"] * 4 + ["blue"] * 4 + [np.nan] * 4, dtype=object)
    rows = np.column_stack([rng.permutation(colors), rng.normal(size=120)]).astype(object)
    prepare = ColumnTransformer([("color", color, [0]), ("x", StandardScaler(), [1])], sparse_threshold=0)
    pipeline = make_pipeline(prepare, LogisticRegression()).fit(rows, rows[:, 1].astype(float) > 0)

    random_colors = compiler_for(pipeline).probe_rows(pipeline, rows)[len(rows) : len(rows) + N_RANDOM, 0]

    counts = {value: list(random_colors).count(value) for value in PROBE_COLORS}
    assert sum(counts.values()) == N_RANDOM, counts
    assert all(count > N_RANDOM / 3 * 0.75 for count in counts.values()), counts

"""LightGBM models compiled to the tree format answer bit for bit as LightGBM's own wrappers do."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import lightgbm
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from build.engines import lightgbm as compile_lightgbm
from build.engines.base import UnsupportedEstimatorError
from build.engines.trees import probe_rows
from serving.engines.boosters import LightGBMBoosterRegressor
from serving.engines.tree_engine import TreeEngine
from serving.engines.trees import ZERO_THRESHOLD
from tests.shared import examples
from tests.unit.build.engines.bitwise import assert_same, grid_rows, through_arrays

CLASSIFIER_OBJECTIVES = ["binary", "cross_entropy", "multiclass", "multiclassova"]
REGRESSOR_OBJECTIVES = ["regression", "regression_l1", "poisson", "huber", "gamma", "tweedie", "cross_entropy"]
BINARY_OBJECTIVES = ["binary", "cross_entropy"]
# (is a classifier, objective): cross_entropy trains either.
OBJECTIVES = [(True, name) for name in CLASSIFIER_OBJECTIVES] + [(False, name) for name in REGRESSOR_OBJECTIVES]
GRID = [np.nan, -0.0, 0.0, 0.1, 0.25, 1.0, 1.5, 2.0, 3.3, -2.5, 1e-36, -ZERO_THRESHOLD, 7.0]
CATEGORY_GRID = [np.nan, 0.0, 1.0, 2.0, 3.0, 5.0, 9.0, 40.0]


def compiled(estimator: Any) -> TreeEngine:
    return through_arrays(compile_lightgbm.ensemble(estimator))


@st.composite
def datasets(draw: st.DrawFn) -> tuple[NDArray[np.float64], int]:
    """Grid rows whose last column holds category codes (or NaN)."""
    rows, seed = draw(grid_rows(GRID, n_features=(2, 4), n_rows=(40, 80)))
    rows[:, -1] = draw(st.lists(st.sampled_from(CATEGORY_GRID), min_size=len(rows), max_size=len(rows)))
    return rows, seed


@settings(max_examples=examples(0.8), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=datasets(),
    task=st.sampled_from(OBJECTIVES),
    sigmoid=st.sampled_from([1.0, 0.6, 1.8]),
    n_estimators=st.integers(1, 8),
    num_leaves=st.integers(2, 8),
    use_missing=st.booleans(),
    zero_as_missing=st.booleans(),
    categorical=st.booleans(),
    random_forest=st.booleans(),
    extra=st.lists(
        st.sampled_from([*GRID, np.inf, -np.inf, -1.0, -0.5, 2.5, 1e300, 3e9, ZERO_THRESHOLD]), min_size=4, max_size=40
    ),
)
def test_compiled_lightgbm_answers_bitwise_as_the_wrapper(
    data: tuple[NDArray[np.float64], int],
    task: tuple[bool, str],
    sigmoid: float,
    n_estimators: int,
    num_leaves: int,
    use_missing: bool,
    zero_as_missing: bool,
    categorical: bool,
    random_forest: bool,
    extra: list[float],
) -> None:
    rows, seed = data
    rng = np.random.default_rng(seed)
    classifier, objective = task
    params: dict[str, Any] = {
        "objective": objective,
        "sigmoid": sigmoid,
        "n_estimators": n_estimators,
        "num_leaves": num_leaves,
        "use_missing": use_missing,
        "zero_as_missing": zero_as_missing,
        "min_child_samples": 2,
        "min_data_per_group": 2,
        "cat_smooth": 1.0,
        "n_jobs": 1,
        "verbose": -1,
        "random_state": seed,
    }
    if random_forest:
        params |= {"boosting_type": "rf", "bagging_freq": 1, "bagging_fraction": 0.8}
    signal = np.nan_to_num(rows[:, 0], nan=1.0) + np.nan_to_num(rows[:, -1], nan=0.0) % 3
    if classifier:
        n_classes = 2 if objective in BINARY_OBJECTIVES else 3
        target: NDArray[Any] = np.array(["a", "b", "c"])[(np.arange(len(rows)) + (signal > 1)) % n_classes]
        estimator: Any = lightgbm.LGBMClassifier(**params)
    else:
        target = np.abs(signal + rng.normal(size=len(rows))) + 0.1
        # cross_entropy's labels are probabilities.
        target = target / target.max() if objective == "cross_entropy" else target
        estimator = lightgbm.LGBMRegressor(**params)
    estimator.fit(rows, target, categorical_feature=[rows.shape[1] - 1] if categorical else "auto")
    drawn = np.resize(np.array(extra), (len(extra) // rows.shape[1] or 1) * rows.shape[1]).reshape(-1, rows.shape[1])
    probes = probe_rows(compile_lightgbm.ensemble(estimator), rows)
    assert_same(estimator, compiled(estimator), np.vstack([rows, drawn, probes]))


@pytest.mark.parametrize(
    ("classifier", "objective"),
    OBJECTIVES,
    ids=[f"{'classifier' if classifier else 'regressor'}-{name}" for classifier, name in OBJECTIVES],
)
def test_every_objective_it_serves_answers_bitwise_as_the_wrapper(classifier: bool, objective: str) -> None:
    """Each objective once, whatever the property test above happens to draw."""
    rng = np.random.default_rng(8)
    rows = rng.normal(size=(150, 3))
    signal = rows[:, 0] + rows[:, 1] / 2
    params: dict[str, Any] = {"objective": objective, "n_estimators": 5, "num_leaves": 6, "sigmoid": 0.7}
    if classifier:
        n_classes = 2 if objective in BINARY_OBJECTIVES else 3
        target: NDArray[Any] = np.digitize(signal, np.quantile(signal, np.linspace(0, 1, n_classes + 1)[1:-1]))
        estimator: Any = lightgbm.LGBMClassifier(**params, verbose=-1, n_jobs=1)
    else:
        target = 1 / (1 + np.exp(-signal)) if objective == "cross_entropy" else np.abs(signal) + 0.1
        estimator = lightgbm.LGBMRegressor(**params, verbose=-1, n_jobs=1)
    estimator.fit(rows, target)
    assert_same(estimator, compiled(estimator), np.vstack([rows, [[np.nan, 0.0, 1e300], [-1e300, np.inf, -0.0]]]))


def test_values_the_c_api_reads_as_zero_meet_thresholds_as_zero_does() -> None:
    # Zeros in the data put thresholds at +-1e-35f; -1e-35f itself is read as 0.0 by LightGBM.
    rng = np.random.default_rng(1)
    rows = np.where(rng.random((400, 1)) < 0.5, 0.0, rng.normal(size=(400, 1)))
    target = (rows[:, 0] < 0).astype(float) * 3 + (rows[:, 0] == 0) + rng.normal(scale=0.01, size=400)
    estimator = lightgbm.LGBMRegressor(n_estimators=3, num_leaves=4, verbose=-1, n_jobs=1).fit(rows, target)
    raw_thresholds = [
        float(value)
        for tree in compile_lightgbm.read_model(estimator).trees
        for value in tree.get("threshold", "").split()
    ]
    assert -ZERO_THRESHOLD in raw_thresholds or ZERO_THRESHOLD in raw_thresholds
    near_zero = np.array(
        [[-ZERO_THRESHOLD], [ZERO_THRESHOLD], [-1e-36], [0.0], [-0.0], [np.nextafter(-ZERO_THRESHOLD, -1)]]
    )
    assert_same(estimator, compiled(estimator), near_zero)


def test_early_stopping_serves_the_trees_up_to_best_iteration() -> None:
    rng = np.random.default_rng(3)
    rows = rng.normal(size=(300, 4))
    target = rows[:, 0] + rng.normal(scale=2, size=300)
    estimator = lightgbm.LGBMRegressor(n_estimators=300, num_leaves=7, verbose=-1, n_jobs=1)
    estimator.fit(
        rows[:200], target[:200], eval_X=(rows[200:],), eval_y=(target[200:],),
        callbacks=[lightgbm.early_stopping(3, verbose=False)],
    )  # fmt: skip
    assert 0 < estimator.best_iteration_ < 300
    assert_same(estimator, compiled(estimator), rows)


def test_linear_trees_are_refused() -> None:
    rows = np.random.default_rng(2).normal(size=(60, 2))
    estimator = lightgbm.LGBMRegressor(n_estimators=2, linear_tree=True, verbose=-1, n_jobs=1).fit(rows, rows[:, 0])
    with pytest.raises(UnsupportedEstimatorError, match=r"^LightGBM linear trees are not compiled$"):
        compile_lightgbm.ensemble(estimator)


def test_text_model_is_parsed_exactly() -> None:
    rows = np.random.default_rng(7).normal(size=(80, 3))
    estimator = lightgbm.LGBMRegressor(n_estimators=3, verbose=-1, n_jobs=1).fit(rows, rows[:, 1] / 3)
    model = compile_lightgbm.parse_text_model(estimator.booster_.model_to_string())
    dumped = estimator.booster_.dump_model()["tree_info"][0]["tree_structure"]
    assert float(model.trees[0]["threshold"].split()[0]) == dumped["threshold"]
    assert model.objective[0] == "regression"


def test_pandas_categorical_features_are_refused() -> None:
    import pandas as pd

    frame = pd.DataFrame({"colour": pd.Categorical(["red", "blue", "green"] * 20), "size": np.arange(60.0)})
    estimator = lightgbm.LGBMRegressor(n_estimators=2, min_child_samples=2, verbose=-1, n_jobs=1)
    estimator.fit(frame, np.arange(60.0))
    message = "LightGBM categorical features of a pandas DataFrame are not compiled"
    with pytest.raises(UnsupportedEstimatorError, match=f"^{message}$"):
        compile_lightgbm.ensemble(estimator)


def test_an_unfitted_wrapper_is_not_claimed_until_it_has_a_booster() -> None:
    """The build asks each compiler whether it serves a model: a LightGBM wrapper that was never
    fitted has no booster yet, and its answer is no (not LightGBM's not-fitted error)."""
    assert not compile_lightgbm.supports(lightgbm.LGBMRegressor())
    rows = np.random.default_rng(3).normal(size=(40, 2))
    assert compile_lightgbm.supports(lightgbm.LGBMRegressor(n_estimators=2, verbose=-1, n_jobs=1).fit(rows, rows[:, 0]))


def test_a_text_without_trees_is_not_a_lightgbm_model() -> None:
    with pytest.raises(ValueError, match=r"^not a LightGBM text model: it has no trees$"):
        compile_lightgbm.parse_text_model("tree\nversion=v4\nobjective=regression\n")


# Thresholds at, inside and just outside LightGBM's zero interval [-kZeroThreshold, kZeroThreshold].
NEAR_ZERO = [
    0.0, -0.0, 1e-36, -1e-36, 5e-36, ZERO_THRESHOLD, -ZERO_THRESHOLD, 2e-35, -2e-35,
    float(np.nextafter(ZERO_THRESHOLD, 1)), float(np.nextafter(-ZERO_THRESHOLD, -1)),
]  # fmt: skip
# decision_type: bit 1 sends missing values left, bits 2-3 are the missing type (None, Zero, NaN).
DECISION_TYPES = [0, 2, 4, 6, 8, 10]


def with_first_tree_splits(text: str, thresholds: list[float], decision_types: list[int]) -> str:
    """The text model with its first tree's thresholds and decision types replaced."""
    text = re.sub(r"^threshold=.*$", "threshold=" + " ".join(map(repr, thresholds)), text, count=1, flags=re.M)
    return re.sub(
        r"^decision_type=.*$", "decision_type=" + " ".join(map(str, decision_types)), text, count=1, flags=re.M
    )


@given(
    thresholds=st.lists(st.sampled_from(NEAR_ZERO), min_size=3, max_size=3),
    decision_types=st.lists(st.sampled_from(DECISION_TYPES), min_size=3, max_size=3),
)
def test_thresholds_near_zero_decide_as_lightgbm_decides(thresholds: list[float], decision_types: list[int]) -> None:
    """A model file may hold any threshold: one inside the zero interval, or at 0.0 itself, meets
    the values LightGBM reads as 0.0 as 0.0 meets it, whatever the node's missing type."""
    rows = np.linspace(-3, 3, 80)[:, None]
    trained = lightgbm.LGBMRegressor(n_estimators=1, num_leaves=4, min_child_samples=2, verbose=-1, n_jobs=1)
    text = trained.fit(rows, np.sin(rows[:, 0])).booster_.model_to_string()
    assert len(compile_lightgbm.parse_text_model(text).trees[0]["threshold"].split()) == 3
    estimator = LightGBMBoosterRegressor(
        lightgbm.Booster(model_str=with_first_tree_splits(text, thresholds, decision_types))
    )
    probes = np.array([*NEAR_ZERO, 3e-35, -3e-35, np.nan, 1.0, -1.0])[:, None]
    assert_same(estimator, compiled(estimator), probes)


def test_a_tree_of_one_leaf_answers_as_lightgbm() -> None:
    """A target LightGBM finds no split for: its model is one tree of one leaf, the target's mean."""
    rows = np.random.default_rng(4).normal(size=(60, 2))
    estimator = lightgbm.LGBMRegressor(n_estimators=4, verbose=-1, n_jobs=1).fit(rows, np.full(60, 2.5))
    assert [tree["num_leaves"] for tree in compile_lightgbm.read_model(estimator).trees] == ["1"]
    assert_same(estimator, compiled(estimator), np.vstack([rows, [[0.0, 0.0], [np.nan, 1.0], [-1e-36, np.inf]]]))


def test_each_categorical_split_reads_its_own_bitset() -> None:
    """Many codes, so that bitsets span several 32-bit words, and several categorical nodes a tree."""
    rng = np.random.default_rng(5)
    codes = rng.integers(0, 70, size=800).astype(float)
    goes_up = rng.random(70) < 0.5
    target = np.where(goes_up[codes.astype(int)], 1.0, -1.0) + (codes % 5) / 4 + rng.normal(scale=0.05, size=800)
    rows = np.column_stack([codes, rng.normal(size=800)])
    estimator = lightgbm.LGBMRegressor(
        n_estimators=4, num_leaves=8, max_cat_to_onehot=1, max_cat_threshold=64, min_data_per_group=1,
        cat_smooth=0.1, cat_l2=0.1, min_child_samples=2, verbose=-1, n_jobs=1,
    )  # fmt: skip
    estimator.fit(rows, target, categorical_feature=[0])
    trees = compile_lightgbm.read_model(estimator).trees
    assert max(int(tree["num_cat"]) for tree in trees) >= 2
    assert (
        max(
            np.diff([int(word) for word in tree["cat_boundaries"].split()]).max()
            for tree in trees
            if int(tree["num_cat"])
        )
        >= 2
    )
    codes_probed = np.concatenate([np.arange(-2.0, 80.0), [0.5, 33.9, 64.2, np.nan, 1e10]])
    probes = np.column_stack([codes_probed, np.resize([0.0, -1.0, 1.0, np.nan], codes_probed.size)])
    assert_same(estimator, compiled(estimator), probes)


def _squared_error(labels: Any, scores: Any) -> tuple[Any, Any]:
    """A custom objective: LightGBM does not know how to turn its scores into answers."""
    # A multiclass model's scores are a column per class, each fitted to its label's indicator.
    wanted = labels if scores.ndim == 1 else np.eye(scores.shape[1])[labels.astype(int)]
    return scores - wanted, np.ones_like(scores)


ROWS = np.random.default_rng(6).normal(size=(90, 3))
TWO_CLASSES = (ROWS[:, 0] > 0).astype(int)
THREE_CLASSES = TWO_CLASSES + (ROWS[:, 1] > 0)
SMALL: dict[str, Any] = {"n_estimators": 2, "verbose": -1, "n_jobs": 1}
REFUSED: dict[str, tuple[Callable[[], Any], str]] = {
    "a classifier of one class": (
        lambda: lightgbm.LGBMClassifier(**SMALL).fit(ROWS, np.zeros(90, int)),
        "LightGBM classifier objective 'binary' with 1 classes is not compiled",
    ),
    "softmax over two classes": (
        lambda: lightgbm.LGBMClassifier(objective="multiclass", num_class=2, **SMALL).fit(ROWS, TWO_CLASSES),
        "LightGBM classifier objective 'multiclass' with 2 classes is not compiled",
    ),
    "one-vs-rest over two classes": (
        lambda: lightgbm.LGBMClassifier(objective="multiclassova", num_class=2, **SMALL).fit(ROWS, TWO_CLASSES),
        "LightGBM classifier objective 'multiclassova' with 2 classes is not compiled",
    ),
    "a classifier trained as a regression": (
        lambda: lightgbm.LGBMClassifier(objective="regression", **SMALL).fit(ROWS, TWO_CLASSES),
        "LightGBM classifier objective 'regression' with 2 classes is not compiled",
    ),
    "a custom binary objective": (
        lambda: lightgbm.LGBMClassifier(objective=_squared_error, **SMALL).fit(ROWS, TWO_CLASSES),
        "LightGBM classifier objective 'custom' with 2 classes is not compiled",
    ),
    "a custom multiclass objective": (
        lambda: lightgbm.LGBMClassifier(objective=_squared_error, **SMALL).fit(ROWS, THREE_CLASSES),
        "LightGBM classifier objective 'custom' with 3 classes is not compiled",
    ),
    "a custom regression objective": (
        lambda: lightgbm.LGBMRegressor(objective=_squared_error, **SMALL).fit(ROWS, ROWS[:, 0]),
        "LightGBM regression objective 'custom' is not compiled",
    ),
    "a regressor of three outputs": (
        lambda: LightGBMBoosterRegressor(
            lightgbm.train(
                {"objective": "multiclass", "num_class": 3, "verbose": -1, "num_threads": 1},
                lightgbm.Dataset(ROWS, THREE_CLASSES),
                2,
            )
        ),
        "a LightGBM regressor of 3 outputs is not compiled",
    ),
}


@pytest.mark.parametrize("case", REFUSED)
def test_objectives_it_cannot_answer_as_the_wrapper_are_refused_by_name(case: str) -> None:
    fitted, message = REFUSED[case]
    with pytest.raises(UnsupportedEstimatorError, match=f"^{re.escape(message)}$"):
        compile_lightgbm.ensemble(fitted())

"""Compile LightGBM models (LGBMClassifier, LGBMRegressor, or a Booster from a text model file)
into the one tree format (serving/engines/trees.py), computing what LightGBM 4.x computes bit for
bit.

What LightGBM does, read from its source (include/LightGBM/tree.h, src/boosting/gbdt_prediction.cpp,
src/c_api.cpp, src/objective/) and checked by the exactness gate on every build:

- a row's values are doubles; the C API drops every value with `|x| <= kZeroThreshold` (the float
  literal 1e-35f) from the row, so it reads as 0.0;
- a numeric split goes left when `x <= threshold` in double, after its missing type: None turns
  NaN into 0.0, Zero also sends `|x| <= kZeroThreshold` to the default child, NaN sends NaN there;
- a categorical split truncates the value to an int; NaN or a negative int goes right, an int
  whose bit is set in the node's bitset left, anything else right;
- each output starts at 0.0 and adds the trees of each iteration in double, iteration by
  iteration (boost-from-average is already in the first trees' leaves); random-forest mode
  divides by the number of iterations;
- ConvertOutput (serving/engines/links.py: sigmoid with the model's `sigmoid`, softmax,
  one-vs-rest sigmoids, exp, reg_sqrt's square), then the scikit-learn wrapper's own steps
  (`1.0 - p` for the first column of a binary model, the label of the first largest probability);
- the wrapper predicts with the trees up to `best_iteration` when early stopping recorded one.

The zero rule is compiled into the thresholds rather than the rows: a threshold in
[-kZeroThreshold, kZeroThreshold) decides the values the C API reads as 0.0 as it decides 0.0
itself once it is moved to the edge of that interval on its own side, and every other value as
before. Categorical nodes are stored as NaN-type nodes whose default child is the right one,
which is where LightGBM sends NaN and negative codes whatever the node's missing type.

The text model writes doubles with 17 significant digits, so they read back exactly. What is not
compiled (linear trees, objectives whose output is not predict/predict_proba of one output, a
custom objective) raises UnsupportedEstimatorError saying so, and the model is served by
LightGBM itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from build.engines.base import UnsupportedEstimatorError
from build.engines.trees import LibraryTree, assemble
from serving.engines.trees import MISSING_NAN, MISSING_NONE, MISSING_ZERO, ZERO_THRESHOLD, TreeEnsemble

LIBRARY = "lightgbm"
PACKAGE = "lightgbm"
CATEGORICAL_MASK = 1
DEFAULT_LEFT_MASK = 2
# LightGBM's missing types (decision_type bits 2-3: None, Zero, NaN) in the tree format's terms.
MISSING_TYPES = np.array([MISSING_NONE, MISSING_ZERO, MISSING_NAN], dtype=np.uint8)
IDENTITY = frozenset({"regression", "regression_l1", "huber", "fair", "quantile", "mape"})
LOG_LINK = frozenset({"poisson", "gamma", "tweedie"})
SIGMOID_OBJECTIVES = frozenset({"binary", "cross_entropy"})
BELOW_ZERO_INTERVAL = float(np.nextafter(-ZERO_THRESHOLD, -np.inf))


@dataclass(frozen=True)
class TextModel:
    """A LightGBM text model: its header's `key=value` lines and one dict per tree."""

    header: dict[str, str]
    trees: list[dict[str, str]]

    @property
    def objective(self) -> tuple[str, dict[str, str], frozenset[str]]:
        """The objective's name, its `key:value` parameters and its bare flags (such as `sqrt`)."""
        name, *words = self.header.get("objective", "custom").split()
        parameters = dict(word.split(":", 1) for word in words if ":" in word)
        return name, parameters, frozenset(word for word in words if ":" not in word)


def parse_text_model(text: str) -> TextModel:
    """The header and trees of `Booster.model_to_string()`; ValueError if it is not one."""
    header_text, separator, rest = text.partition("\nTree=")
    if not separator:
        raise ValueError("not a LightGBM text model: it has no trees")
    # The blocks after the trees (feature importances, parameters) do not start with "Tree=".
    blocks = ("Tree=" + rest).split("\n\n")
    return TextModel(_fields(header_text), [_fields(block) for block in blocks if block.strip().startswith("Tree=")])


def _fields(block: str) -> dict[str, str]:
    """A block's `key=value` lines; a line without `=` (such as `average_output`) maps to ""."""
    # Not mutated, equivalent: no value that is read holds "=", so rpartition splits the same.
    return dict(line.partition("=")[::2] for line in block.strip().splitlines())  # pragma: no mutate


def supports(estimator: Any) -> bool:
    """LightGBM's scikit-learn wrappers, and a Booster served as one (serving/engines/boosters.py),
    once fitted: an unfitted wrapper has no booster yet (its `booster_` raises an AttributeError)."""
    claimed = _is_lightgbm(estimator) or _is_booster_model(estimator)
    return claimed and getattr(estimator, "booster_", None) is not None


def _is_lightgbm(estimator: Any) -> bool:
    return type(estimator).__module__.split(".")[0] == LIBRARY


def _is_booster_model(estimator: Any) -> bool:
    return getattr(type(estimator), "library", None) == LIBRARY


def _numbers(tree: dict[str, str], key: str, dtype: type) -> NDArray[Any]:
    # Not mutated, equivalent: numpy infers `dtype` from its scalars.
    return np.array([dtype(word) for word in tree.get(key, "").split()], dtype=dtype)  # pragma: no mutate


def _zero_rule(thresholds: NDArray[np.float64]) -> NDArray[np.float64]:
    """Thresholds that decide raw values as LightGBM decides them once |x| <= kZeroThreshold is 0.0."""
    # Not mutated, equivalent: `<=` would take +kZeroThreshold inside, where its edge is itself.
    inside = (thresholds >= -ZERO_THRESHOLD) & (thresholds < ZERO_THRESHOLD)  # pragma: no mutate
    edge = np.where(thresholds < 0, BELOW_ZERO_INTERVAL, ZERO_THRESHOLD)
    return np.where(inside, edge, thresholds)


def _tree(tree: dict[str, str]) -> LibraryTree:
    # Not mutated, equivalent: LightGBM writes is_linear in every tree; the default is never read.
    if tree.get("is_linear", "0") != "0":  # pragma: no mutate
        raise UnsupportedEstimatorError("LightGBM linear trees are not compiled")
    leaf_values = _numbers(tree, "leaf_value", float)
    n_leaves = leaf_values.size
    n_internal = n_leaves - 1
    decision = _numbers(tree, "decision_type", int)
    categorical = (decision & CATEGORICAL_MASK) != 0
    threshold = _numbers(tree, "threshold", float)

    def library_node(child: NDArray[np.intp]) -> NDArray[np.intp]:
        # LightGBM's leaves are ~child: here they follow the internal nodes.
        # Not mutated, equivalent: node 0 is the root, never a child, so `> 0` splits the same.
        return np.where(child >= 0, child, n_internal + ~child)  # pragma: no mutate

    leaves = np.full(n_leaves, -1)
    left = np.concatenate([library_node(_numbers(tree, "left_child", int)), leaves])
    right = np.concatenate([library_node(_numbers(tree, "right_child", int)), leaves])
    # The leaves' rows of the split fields, which are never read.
    pad = np.zeros(n_leaves)
    boundaries = _numbers(tree, "cat_boundaries", int)
    words = _numbers(tree, "cat_threshold", int).astype(np.uint32)  # 32-bit words, written as decimals
    categories = {}
    for node in np.flatnonzero(categorical):
        index = int(threshold[node])
        categories[int(node)] = words[boundaries[index] : boundaries[index + 1]]
    missing = MISSING_TYPES[(decision >> 2) & 3]
    return LibraryTree(
        left=left.astype(np.intp),
        right=right.astype(np.intp),
        feature=np.concatenate([_numbers(tree, "split_feature", int), pad]),
        # A categorical node's threshold, its bitset's index, is never compared.
        threshold=np.concatenate([_zero_rule(threshold), pad]),
        value=np.concatenate([np.zeros(n_internal), leaf_values])[:, None],
        default_left=np.concatenate([((decision & DEFAULT_LEFT_MASK) != 0) & ~categorical, pad]),
        missing=np.concatenate([np.where(categorical, MISSING_NAN, missing), pad]),
        categories=categories,
    )


def _outputs(estimator: Any, model: TextModel) -> tuple[str, str, str, NDArray[Any] | None]:
    """kind, link, decision and classes of the wrapper's answers."""
    name, _, flags = model.objective
    n_outputs = int(model.header["num_tree_per_iteration"])
    classes = getattr(estimator, "classes_", None)
    if classes is None:
        if n_outputs != 1:
            raise UnsupportedEstimatorError(f"a LightGBM regressor of {n_outputs} outputs is not compiled")
        if name in IDENTITY:
            return "regressor", "lightgbm_square" if "sqrt" in flags else "identity", "value", None
        if name in LOG_LINK:
            return "regressor", "lightgbm_exp", "value", None
        if name == "cross_entropy":
            return "regressor", "lightgbm_sigmoid", "value", None
        raise UnsupportedEstimatorError(f"LightGBM regression objective {name!r} is not compiled")
    classes = np.asarray(classes)
    if name in SIGMOID_OBJECTIVES and classes.size == 2 and n_outputs == 1:
        return "classifier", "lightgbm_binary", "argmax_proba", classes
    if name == "multiclass" and classes.size == n_outputs > 2:
        return "classifier", "lightgbm_softmax", "argmax_proba", classes
    if name == "multiclassova" and classes.size == n_outputs > 2:
        return "classifier", "lightgbm_sigmoid", "argmax_proba", classes
    raise UnsupportedEstimatorError(
        f"LightGBM classifier objective {name!r} with {classes.size} classes is not compiled"
    )


def read_model(estimator: Any) -> TextModel:
    """The estimator's Booster as its text model, with the trees its predict reads: LightGBM
    saves them as it predicts, up to best_iteration when early stopping recorded one."""
    return parse_text_model(estimator.booster_.model_to_string())


def ensemble(estimator: Any) -> TreeEnsemble:
    """The model in the one tree format; UnsupportedEstimatorError says what is not compiled."""
    if estimator.booster_.pandas_categorical:
        # Its categories are strings mapped to codes by pandas inside the wrapper, not numbers.
        raise UnsupportedEstimatorError("LightGBM categorical features of a pandas DataFrame are not compiled")
    model = read_model(estimator)
    kind, link, decision, classes = _outputs(estimator, model)
    n_outputs = int(model.header["num_tree_per_iteration"])
    trees = [_tree(tree) for tree in model.trees]
    return assemble(
        trees,
        kind=kind,
        n_features=int(model.header["max_feature_idx"]) + 1,
        classes=classes,
        input_dtype="float64",
        input_check="any",
        comparison="<=",
        tree_output=[index % n_outputs for index in range(len(trees))],
        base_score=np.zeros(n_outputs),
        average="average_output" in model.header,
        link=link,
        # The sigmoid links' `sigmoid`; cross_entropy's has none (1.0), the other links take none.
        link_parameter=float(model.objective[1].get("sigmoid", "1")),
        decision=decision,
        category_rule="truncate",
    )

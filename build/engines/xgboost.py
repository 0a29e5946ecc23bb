"""Compile XGBoost models (XGBClassifier, XGBRegressor, or a Booster loaded into them) into the
one tree format (serving/engines/trees.py), computing what XGBoost 3.x computes bit for bit.

What XGBoost does, read from its source (src/predictor/cpu_predictor.cc, predict_fn.h,
src/objective/, src/learner.cc) and checked by the exactness gate on every build:

- inputs are cast to float32; a split goes left when `x < threshold` in float32, NaN to the
  node's default child; the right child is always the left one + 1 (GetNextNode);
- each output starts at `base_score`, stored in the model in the objective's output space and
  turned into a margin at load (ProbToMargin): for logistic objectives `-logf(1/p - 1)` after
  clamping p to [1e-6, 1 - 1e-6], for log-link objectives `logf(p)`, else as it is; a scalar,
  or one per class since 3.1;
- trees add `leaf * tree_weight` (1, or DART's weight) to their output group in float32, one
  tree after another in tree order;
- the objective's PredTransform (serving/engines/links.py: sigmoid, softmax, expf, none for
  binary:logitraw and the regression objectives), then the scikit-learn wrapper's own steps
  (`1.0 - p` for the first column of a binary model, argmax or `p > 0.5` for labels, scipy's
  softmax for multi:softmax's probabilities);
- the wrapper predicts with the trees up to `best_iteration` when early stopping recorded one.

The thresholds are read from the model's UBJSON form (`save_raw("ubj")`), which holds the exact
float32 values (text dumps round them). What is not compiled (gblinear, categorical splits,
multi-output trees and several targets, a `missing` other than NaN, a model without trees,
objectives whose wrapper output is not predict/predict_proba of one output) raises
UnsupportedEstimatorError saying so, and the model is served by XGBoost itself.
"""

from __future__ import annotations

import ctypes
import json
import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from build.engines import ubjson
from build.engines.base import UnsupportedEstimatorError
from build.engines.trees import LibraryTree, assemble
from serving.engines.trees import TreeEnsemble

LIBRARY = "xgboost"
PACKAGE = "xgboost-cpu"
LOGISTIC = frozenset({"binary:logistic", "reg:logistic"})
LOG_LINK = frozenset({"count:poisson", "reg:gamma", "reg:tweedie"})
IDENTITY = frozenset(
    {
        "reg:squarederror",
        "reg:absoluteerror",
        "reg:pseudohubererror",
        "reg:squaredlogerror",
        "reg:quantileerror",  # one quantile; several are several targets, refused as such
        "binary:logitraw",
    }
)
MULTICLASS = frozenset({"multi:softprob", "multi:softmax"})
KRT_EPS = np.float32(1e-6)

_LIBM = ctypes.CDLL("libm.so.6")
_LIBM.logf.restype = ctypes.c_float
_LIBM.logf.argtypes = [ctypes.c_float]


def supports(estimator: Any) -> bool:
    """XGBoost's scikit-learn wrappers, without importing XGBoost for other models."""
    return type(estimator).__module__.split(".")[0] == LIBRARY and hasattr(estimator, "get_booster")


def _logf(value: np.float32) -> np.float32:
    return np.float32(_LIBM.logf(float(value)))


def base_margin(objective: str, base_score: NDArray[np.float32]) -> NDArray[np.float32]:
    """ProbToMargin of `objective`, in float32 with libm's logf as XGBoost computes it at load."""
    if objective in LOGISTIC:
        margins = []
        for value in base_score:
            clamped = min(max(value, KRT_EPS), np.float32(1) - KRT_EPS)
            margins.append(-_logf(np.float32(1) / clamped - np.float32(1)))
        # Not mutated, equivalent: the margins are float32 scalars already.
        return np.array(margins, dtype=np.float32)  # pragma: no mutate
    if objective in LOG_LINK:
        # Not mutated, equivalent: _logf's values are float32 scalars already.
        return np.array([_logf(value) for value in base_score], dtype=np.float32)  # pragma: no mutate
    return base_score


def parse_base_score(text: str) -> NDArray[np.float32]:
    """`base_score` as XGBoost writes it ("5E-1", or "[1E0,2E0]" since 3.1): the shortest decimal
    of each float32. Refused unless each decimal is the shortest of the float32 read back."""
    parsed = json.loads(text)
    decimals = parsed if isinstance(parsed, list) else [parsed]
    # Not mutated, equivalent: JSON reads XGBoost's decimals ("5E-1") as floats, an array of them is float64 anyway.
    floats = np.array(decimals, dtype=np.float64).astype(np.float32)  # pragma: no mutate
    # Not mutated, equivalent: `floats` is made from `decimals`, one for one.
    for decimal, value in zip(decimals, floats, strict=True):  # pragma: no mutate
        # Not mutated, equivalent: unique=True is numpy's default.
        if float(np.format_float_positional(value, unique=True)) != float(decimal):  # pragma: no mutate
            raise UnsupportedEstimatorError(f"XGBoost base_score {text!r} is not a list of float32 values")
    return floats


def read_model(estimator: Any) -> dict[str, Any]:
    """The learner section of the wrapper's model, from its UBJSON form (exact float32s)."""
    raw = bytes(estimator.get_booster().save_raw("ubj"))
    learner: dict[str, Any] = ubjson.loads(raw)["learner"]
    return learner


def _iteration_end(estimator: Any, n_iterations: int) -> int:
    """The wrapper's predict uses the trees up to best_iteration when early stopping set one."""
    try:
        best = int(estimator.best_iteration)
    except AttributeError:
        return n_iterations
    return min(best + 1, n_iterations)


def _check_settings(estimator: Any, learner: dict[str, Any]) -> None:
    booster = learner["gradient_booster"]["name"]
    if booster != "gbtree":
        raise UnsupportedEstimatorError(f"XGBoost booster {booster!r} is not compiled (only tree boosters are)")
    # Not mutated, equivalent: the wrapper's parameters always hold `missing`; the default is never read.
    missing = estimator.get_params().get("missing", math.nan)  # pragma: no mutate
    if missing is not None and not (isinstance(missing, float) and math.isnan(missing)):
        raise UnsupportedEstimatorError(f"XGBoost missing={missing!r} is not compiled (only NaN as missing is)")
    params = learner["learner_model_param"]
    # Not mutated, equivalent: every model XGBoost saves states num_target; the default is never read.
    if int(params.get("num_target", "1")) > 1:  # pragma: no mutate
        raise UnsupportedEstimatorError("XGBoost models of several targets are not compiled")


def _trees(model: dict[str, Any], end: int) -> list[LibraryTree]:
    """The trees. Marked equivalent below: the dtypes stated for the reader (the model's arrays are
    typed already, integers or float32, and assemble() converts what it keeps); a float32 leaf
    times a float64 weight is exact in float64, and rounds to the float32 product."""
    weights = np.asarray(model.get("weight_drop", np.ones(len(model["trees"]))), dtype=np.float32)  # pragma: no mutate
    trees = []
    for index, tree in enumerate(model["trees"][:end]):
        # Not mutated, equivalent: unreachable through the wrapper, whose models of several targets
        # _check_settings refuses first; kept for a tree read from elsewhere.
        # pragma: no mutate start
        if int(tree["tree_param"].get("size_leaf_vector", "1")) > 1:
            raise UnsupportedEstimatorError("XGBoost multi-output trees are not compiled")
        # pragma: no mutate end
        left = np.asarray(tree["left_children"], dtype=np.intp)  # pragma: no mutate
        right = np.asarray(tree["right_children"], dtype=np.intp)  # pragma: no mutate
        split_type = np.asarray(tree["split_type"])
        internal = left != -1
        if bool(split_type[internal].any()):
            raise UnsupportedEstimatorError("XGBoost categorical splits are not compiled")
        if not np.array_equal(right[internal], left[internal] + 1):
            # XGBoost's predictor takes the node after the left child as the right one.
            raise UnsupportedEstimatorError("an XGBoost tree's right child is not its left child + 1")
        conditions = np.asarray(tree["split_conditions"], dtype=np.float32)  # pragma: no mutate
        feature = np.asarray(tree["split_indices"], dtype=np.intp)  # pragma: no mutate
        threshold = conditions.astype(np.float64)  # pragma: no mutate
        default_left = np.asarray(tree["default_left"], dtype=bool)  # pragma: no mutate
        trees.append(
            LibraryTree(
                left=left,
                right=right,
                feature=feature,
                threshold=threshold,
                # float32 `leaf * weight`: the product XGBoost adds (exact for weight 1).
                value=(conditions * weights[index])[:, None],
                default_left=default_left,
                # Every node's rule is NaN's, assemble()'s default.
            )
        )
    return trees


def _outputs(estimator: Any, objective: str, n_groups: int) -> tuple[str, str, str, NDArray[Any] | None]:
    """kind, link, decision and classes of the wrapper's answers for `objective`."""
    is_classifier = hasattr(estimator, "n_classes_")
    if not is_classifier:
        links = {**dict.fromkeys(LOGISTIC, "xgboost_logistic"), **dict.fromkeys(LOG_LINK, "xgboost_exp")}
        if objective in links or objective in IDENTITY:
            if n_groups != 1:
                raise UnsupportedEstimatorError(f"XGBRegressor with {objective} and {n_groups} outputs is not compiled")
            return "regressor", links.get(objective, "identity"), "value", None
        raise UnsupportedEstimatorError(f"XGBRegressor objective {objective!r} is not compiled")
    n_classes = int(estimator.n_classes_)
    classes = np.asarray(estimator.classes_)
    if objective in ("binary:logistic", "binary:logitraw") and n_classes == 2 and n_groups == 1:
        link = "xgboost_binary" if objective == "binary:logistic" else "xgboost_raw_binary"
        return "classifier", link, "proba_above_half", classes
    if objective in MULTICLASS and n_classes > 2 and n_groups == n_classes:
        if objective == "multi:softmax":
            # The wrapper returns the booster's class index as int32.
            return "classifier", "xgboost_margin_softmax", "argmax_raw", classes.astype(np.int32)
        return "classifier", "xgboost_softprob", "argmax_proba", classes
    raise UnsupportedEstimatorError(f"XGBClassifier with {objective!r} and {n_classes} classes is not compiled")


def ensemble(estimator: Any) -> TreeEnsemble:
    """The wrapper's model in the one tree format; UnsupportedEstimatorError says what is not compiled."""
    learner = read_model(estimator)
    _check_settings(estimator, learner)
    objective = learner["objective"]["name"]
    params = learner["learner_model_param"]
    model = learner["gradient_booster"]["model"]
    n_groups = max(int(params["num_class"]), 1)
    kind, link, decision, classes = _outputs(estimator, objective, n_groups)
    margins = base_margin(objective, parse_base_score(params["base_score"]))
    # XGBoost writes one base_score per output (expanding a scalar of an older model when it loads it).
    if margins.size != n_groups:
        # Not mutated, equivalent: unreachable while XGBoost refuses to load a base_score of another length;
        # kept for a model read from elsewhere.
        # pragma: no mutate start
        raise UnsupportedEstimatorError(f"XGBoost base_score has {margins.size} values for {n_groups} outputs")
        # pragma: no mutate end
    indptr = np.asarray(model["iteration_indptr"])  # a list of ints
    end = int(indptr[_iteration_end(estimator, indptr.size - 1)])
    if end == 0:
        # n_estimators=0 or 0 rounds: XGBoost then adds base_score to the margin as it is,
        # without turning it into one through the objective (ProbToMargin), unlike any trained model.
        raise UnsupportedEstimatorError("an XGBoost model without trees is not compiled")
    return assemble(
        _trees(model, end),
        kind=kind,
        n_features=int(params["num_feature"]),
        classes=classes,
        input_dtype="float32",
        input_check="any",
        comparison="<",
        tree_output=[int(group) for group in np.asarray(model["tree_info"])[:end]],
        base_score=margins,
        average=False,
        link=link,
        decision=decision,
        value_dtype="float32",
    )

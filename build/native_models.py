"""Model files in a library's own format, as `estimator_file`, told apart by their extension:
`.json` / `.ubj` an XGBoost Booster (`Booster.save_model`), `.txt` a LightGBM Booster
(`Booster.save_model`). Anything else is a joblib of a fitted estimator.

A native model becomes the estimator its library's scikit-learn wrapper would be: XGBoost's own
XGBClassifier/XGBRegressor loaded from the file, LightGBM's Booster inside
serving/engines/boosters.py's wrappers. Which one comes from the wrapper that saved the file
(XGBoost records it) or else from the model's objective, and must agree with the spec's `task`.
A file answers as the object that saved it: a wrapper's file as that wrapper (up to early
stopping's best_iteration), a Booster's as `Booster.predict` of the Booster loaded from it: every
tree in the file (LightGBM's save_model writes the trees up to best_iteration only).

Also: which libraries' packages a model needs when it is served through its library rather
than compiled.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from build.spec import ModelSpec, SpecError
from serving.engines.boosters import CLASSIFIER_OBJECTIVES, LightGBMBoosterClassifier, LightGBMBoosterRegressor

XGBOOST_SUFFIXES = frozenset({".json", ".ubj"})
LIGHTGBM_SUFFIXES = frozenset({".txt"})
# The package each library's models need, by the top-level module of their classes.
LIBRARY_PACKAGES = {"xgboost": "xgboost-cpu", "lightgbm": "lightgbm"}
XGBOOST_CLASSIFIER_PREFIXES = ("binary:", "multi:")


def is_native(path: Path) -> bool:
    return path.suffix.lower() in XGBOOST_SUFFIXES | LIGHTGBM_SUFFIXES


def _check_task(spec: ModelSpec, path: Path, objective: str, is_classifier: bool) -> None:
    if is_classifier != (spec.task == "classification"):
        kind = "classification" if is_classifier else "regression"
        raise SpecError(f"`task` is {spec.task!r}, but {path.name}'s objective {objective!r} is for {kind}")


def _xgboost(path: Path, spec: ModelSpec) -> Any:
    import xgboost

    try:
        booster = xgboost.Booster(model_file=str(path))
    except xgboost.core.XGBoostError as error:
        raise SpecError(f"`estimator_file` {path.name} is not an XGBoost model: {str(error).splitlines()[0]}") from None
    objective = json.loads(booster.save_config())["learner"]["objective"]["name"]
    # XGBModel.save_model records which wrapper saved the file; Booster.save_model does not.
    saved_by_wrapper = booster.attr("scikit_learn")
    if saved_by_wrapper is None:
        is_classifier = objective.startswith(XGBOOST_CLASSIFIER_PREFIXES)
        # Booster.predict uses every tree whatever early stopping recorded; a wrapper would stop
        # at best_iteration. Without it, the wrapper answers as the Booster that saved the file.
        booster.set_attr(best_iteration=None, best_score=None)
    else:
        is_classifier = json.loads(saved_by_wrapper).get("_estimator_type") == "classifier"
    _check_task(spec, path, objective, is_classifier)
    wrapper = xgboost.XGBClassifier() if is_classifier else xgboost.XGBRegressor()
    wrapper.load_model(bytearray(booster.save_raw("ubj")))
    return wrapper


def _lightgbm(path: Path, spec: ModelSpec) -> Any:
    import lightgbm

    try:
        booster = lightgbm.Booster(model_file=str(path))
    except lightgbm.basic.LightGBMError as error:
        raise SpecError(f"`estimator_file` {path.name} is not a LightGBM model: {error}") from None
    objective = _text_objective(path)
    is_classifier = objective in CLASSIFIER_OBJECTIVES
    _check_task(spec, path, objective, is_classifier)
    return LightGBMBoosterClassifier(booster) if is_classifier else LightGBMBoosterRegressor(booster)


def _text_objective(path: Path) -> str:
    """The objective's name from a LightGBM text model's header (before its first tree)."""
    with path.open() as lines:
        for line in lines:
            if line.startswith("Tree="):
                break
            if line.startswith("objective="):
                return line.removeprefix("objective=").split()[0]
    return "custom"


def load_native(path: Path, spec: ModelSpec) -> Any:
    """The estimator of a native model file; SpecError (one line) if it cannot be read or its
    objective disagrees with the spec's task."""
    if path.suffix.lower() in XGBOOST_SUFFIXES:
        return _xgboost(path, spec)
    return _lightgbm(path, spec)


def _steps(estimator: Any) -> list[Any]:
    return [step for _, step in getattr(estimator, "steps", [])] or [estimator]


def fitted_on_pandas_categories(estimator: Any) -> str | None:
    """The class of the XGBoost or LightGBM model (or Pipeline step) fitted on a DataFrame with
    pandas categorical columns, if any: it takes only a DataFrame holding those columns with the
    same categories, which rows of the API's values are not."""
    for step in _steps(estimator):
        if getattr(getattr(step, "booster_", None), "pandas_categorical", None):  # LightGBM
            return type(step).__name__
        get_booster = getattr(step, "get_booster", None)
        fitted_on_frame = getattr(step, "feature_names_in_", None) is not None
        if fitted_on_frame and callable(get_booster) and "c" in (get_booster().feature_types or []):  # XGBoost
            return type(step).__name__
    return None


def outputs_per_row(estimator: Any) -> int:
    """How many values the estimator (a Pipeline: its last step) predicts per row: scikit-learn's
    `n_outputs_`, XGBoost's number of targets (several quantiles, multi-target regression)."""
    last = _steps(estimator)[-1]
    get_booster = getattr(last, "get_booster", None)
    if callable(get_booster) and hasattr(last, "n_features_in_"):
        return int(json.loads(get_booster().save_config())["learner"]["learner_model_param"]["num_target"])
    return int(getattr(last, "n_outputs_", 1))


def model_libraries(estimator: Any) -> list[str]:
    """The packages (xgboost-cpu, lightgbm) the estimator, or a Pipeline's steps, need to predict."""
    found = {
        LIBRARY_PACKAGES[module]
        for step in _steps(estimator)
        for module in (type(step).__module__.split(".")[0], getattr(type(step), "library", None))
        if module in LIBRARY_PACKAGES
    }
    return sorted(found)

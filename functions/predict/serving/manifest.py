"""The model's manifest: the build's record of the model it baked, and the one definition of it.

The build writes it (build/train.py, then build/package.py adds the engine) and the function
reads it (serving/model.py); both use these classes, so a field cannot mean one thing when
written and another when read. It names the model, its task, its features (the request
schema, from the model spec), its classes, where it came from, and the engine that serves it.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, StrictStr, StringConstraints, model_validator

from serving.codecs import CODECS, FeatureType, all_numeric

MANIFEST_FILE = "manifest.json"
SCHEMA_VERSION = 2

EngineName = Literal["compiled", "scikit-learn"]
COMPILED: EngineName = "compiled"
SCIKIT_LEARN: EngineName = "scikit-learn"
Guarantee = Literal["bitwise-anywhere", "bitwise-same-libraries"]
"""How far the compiled engine's answers are scikit-learn's. "bitwise-anywhere": only comparisons,
and sums and products in scikit-learn's order, so on any CPU. "bitwise-same-libraries": also
calls into numpy (BLAS products, exp) or libm exactly as scikit-learn does, so wherever the same
numpy and libm run; the build gate proves it on the build machine, the deployment check on Lambda."""

Label = StrictInt | StrictFloat | StrictStr
"""A class label as the estimator's `classes_` holds it, and as the API answers it."""
Name = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.\-]+$")]
"""A model or feature name: it appears in URLs, JSON keys and metric names."""


class Feature(BaseModel):
    """One input column of the model, in the order the estimator takes them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Name
    type: FeatureType = "number"
    categories: list[Annotated[str, StringConstraints(min_length=1)]] | None = None
    allow_missing: bool = False

    @model_validator(mode="after")
    def _valid_for_its_type(self) -> Self:
        CODECS[self.type].check(self)
        return self


class EngineRecord(BaseModel):
    """Which engine serves the model, from which file, and what it guarantees."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: EngineName
    file: str
    sha256: str
    kind: str | None = None
    """The compiled engine's kind (forest, boosting, linear, pipeline)."""
    guarantee: Guarantee | None = None
    fallback_reason: str | None = None
    """Why the model is served by scikit-learn: what the compiler refused."""
    dataframe_input: bool = False
    """The scikit-learn engine calls the estimator with a pandas DataFrame, as it was fitted: the
    package ships pandas."""
    libraries: list[str] | None = None
    """The model's own libraries (xgboost-cpu, lightgbm) the scikit-learn engine predicts through:
    the package ships them, at the build environment's pinned versions."""


Share = Annotated[float, Field(ge=0, le=1)]
# Frequencies are rounded when written (serving/profile.py): they sum to 1 within this.
SUM_TOLERANCE = 1e-6


def _check_shares(frequencies: list[float], missing_rate: float, what: str) -> None:
    """Frequencies over the non-missing values sum to 1, or to 0 when every value was missing."""
    total = math.fsum(frequencies)
    expected = 0.0 if missing_rate == 1 else 1.0
    if abs(total - expected) > SUM_TOLERANCE:
        raise ValueError(f"{what} frequencies sum to {total}, expected {expected}")


class NumberProfile(BaseModel):
    """A number's distribution: bins between `edges` (quantiles of the profiled values; a value
    equal to an edge falls in the bin below it), each bin's share of the non-missing values, the
    share of missing values, and the range seen."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["number"] = "number"
    edges: list[float]
    frequencies: list[Share] = Field(min_length=1)
    missing_rate: Share = 0.0
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _bins(self) -> Self:
        if len(self.frequencies) != len(self.edges) + 1:
            raise ValueError(f"{len(self.edges)} edges make {len(self.edges) + 1} bins, not {len(self.frequencies)}")
        if any(not math.isfinite(edge) for edge in self.edges) or any(
            low >= high for low, high in zip(self.edges, self.edges[1:], strict=False)
        ):
            raise ValueError("`edges` must be finite and strictly increasing")
        _check_shares(self.frequencies, self.missing_rate, "bin")
        return self


class CategoryProfile(BaseModel):
    """A category's distribution: each category's share of the non-missing values (0 for one never
    seen), and the share of missing values."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["category"] = "category"
    frequencies: dict[str, Share] = Field(min_length=1)
    missing_rate: Share = 0.0

    @model_validator(mode="after")
    def _shares(self) -> Self:
        _check_shares(list(self.frequencies.values()), self.missing_rate, "category")
        return self


class ClassProfile(BaseModel):
    """A classifier's predictions: each class's share, in the manifest's `classes` order."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["classes"] = "classes"
    frequencies: list[Share] = Field(min_length=1)

    @model_validator(mode="after")
    def _shares(self) -> Self:
        _check_shares(self.frequencies, 0.0, "class")
        return self


class Profile(BaseModel):
    """What drift is measured against: the distribution of each captured feature on the rows the
    model was trained on (or the spec's sample rows), and of the predictions on held-out rows."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: Literal["training", "sample"]
    """The rows the features were profiled on: the training split, or a fitted model's sample rows."""
    rows: int = Field(ge=1)
    prediction_rows: int = Field(ge=1)
    features: dict[str, Annotated[NumberProfile | CategoryProfile, Field(discriminator="type")]]
    predictions: Annotated[ClassProfile | NumberProfile, Field(discriminator="type")]
    not_captured: list[str] = Field(default_factory=list)
    """Features the spec marks `capture = false` (personal data): never captured, not profiled."""


class Manifest(BaseModel):
    """The build's record of the model: identity, interface, provenance, metrics and engine."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[2]
    name: Name
    version: str
    file: str
    sha256: str
    task: Literal["classification", "regression"]
    estimator: str
    features: list[Feature] = Field(min_length=1)
    class_names: list[str]
    classes: list[Label]
    example: list[Label | None]
    """One row in feature order, for the docs: the spec's `example`, else the first held-out row."""
    training: dict[str, Any]
    metrics: dict[str, int | float]
    libraries: dict[str, str]
    fingerprint: str
    engine: EngineRecord | None = None
    """Set when the model is baked into a package; a manifest straight from training has none."""
    probabilities: bool = True
    """False for a classifier whose estimator has no predict_proba (SVC, LinearSVC, RidgeClassifier):
    it predicts classes only, and a request for probabilities is refused (no_probabilities)."""
    profile: Profile | None = None
    """What drift is measured against; a manifest written before profiles existed has none."""

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if len(self.class_names) != len(self.classes):
            raise ValueError(f"{len(self.class_names)} class_names for {len(self.classes)} classes")
        if (self.task == "regression") == bool(self.classes):
            raise ValueError(f"a {self.task} model has {len(self.classes)} classes")
        if len(self.example) != len(self.features):
            raise ValueError(f"the example has {len(self.example)} values for {len(self.features)} features")
        return self

    def check_profile(self) -> None:
        """Raise ValueError unless the profile describes exactly the captured features, each as its
        type, and the model's outputs. Not a validator: loading checks the manifest against the
        model file first (serving/model.py), whose message says more when the two disagree."""
        profile = self.profile
        if profile is None:
            return
        unknown = [name for name in profile.not_captured if name not in self.feature_names]
        if unknown:
            raise ValueError(f"profile.not_captured names unknown features {unknown}")
        captured = [name for name in self.feature_names if name not in profile.not_captured]
        # Compared as sets: the manifest is written with sorted keys.
        if set(profile.features) != set(captured):
            raise ValueError(f"the profile describes features {sorted(profile.features)}, expected {sorted(captured)}")
        for feature in self.features:
            described = profile.features.get(feature.name)
            if described is None:
                continue
            if described.type != feature.type:
                raise ValueError(f"the profile describes {feature.name} as a {described.type}, it is a {feature.type}")
            if isinstance(described, CategoryProfile) and set(described.frequencies) != set(feature.categories or []):
                raise ValueError(f"the profile's categories of {feature.name} are not the feature's")
        wanted = "classes" if self.task == "classification" else "number"
        if profile.predictions.type != wanted:
            raise ValueError(f"a {self.task} model's prediction profile is of type {wanted!r}")
        if isinstance(profile.predictions, ClassProfile) and len(profile.predictions.frequencies) != len(self.classes):
            profiled = len(profile.predictions.frequencies)
            raise ValueError(f"the prediction profile has {profiled} classes, the model {len(self.classes)}")

    @property
    def captured_features(self) -> list[Feature]:
        """The features a capture record may hold: all but those the spec marks `capture = false`."""
        excluded = set(self.profile.not_captured) if self.profile is not None else set()
        return [feature for feature in self.features if feature.name not in excluded]

    @property
    def feature_names(self) -> list[str]:
        return [feature.name for feature in self.features]

    @property
    def no_probabilities(self) -> str | None:
        """Why a classifier gives no class probabilities, or None when it does."""
        if self.task != "classification" or self.probabilities:
            return None
        return (
            f"model {self.name} ({self.estimator.rpartition('.')[2]}) has no predict_proba: it predicts classes, "
            "not class probabilities; omit ?probabilities=true"
        )

    @property
    def all_numeric(self) -> bool:
        return all_numeric(self.features)

    @property
    def serving_engine(self) -> EngineRecord:
        """The baked engine; a manifest straight from training is served by scikit-learn from its file."""
        return self.engine or EngineRecord(name=SCIKIT_LEARN, file=self.file, sha256=self.sha256)

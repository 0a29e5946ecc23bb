"""The model's manifest: the build's record of the model it baked, and the one definition of it.

The build writes it (build/train.py, then build/package.py adds the engine) and the function
reads it (serving/model.py); both use these classes, so a field cannot mean one thing when
written and another when read. It names the model, its task, its features (the request
schema, from the model spec), its classes, where it came from, and the engine that serves it.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, StrictStr, StringConstraints, model_validator

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
    type: Literal["number", "category"] = "number"
    categories: list[Annotated[str, StringConstraints(min_length=1)]] | None = None
    allow_missing: bool = False

    @model_validator(mode="after")
    def _categories_match_type(self) -> Self:
        if self.type == "category" and not self.categories:
            raise ValueError("a category feature lists its accepted values in `categories`")
        if self.type == "number" and self.categories is not None:
            raise ValueError("`categories` is only for features of type category")
        if self.categories is not None and len(set(self.categories)) != len(self.categories):
            raise ValueError("`categories` lists a value twice")
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

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if len(self.class_names) != len(self.classes):
            raise ValueError(f"{len(self.class_names)} class_names for {len(self.classes)} classes")
        if (self.task == "regression") == bool(self.classes):
            raise ValueError(f"a {self.task} model has {len(self.classes)} classes")
        if len(self.example) != len(self.features):
            raise ValueError(f"the example has {len(self.example)} values for {len(self.features)} features")
        return self

    @property
    def feature_names(self) -> list[str]:
        return [feature.name for feature in self.features]

    @property
    def all_numeric(self) -> bool:
        return all(feature.type == "number" for feature in self.features)

    @property
    def serving_engine(self) -> EngineRecord:
        """The baked engine; a manifest straight from training is served by scikit-learn from its file."""
        return self.engine or EngineRecord(name=SCIKIT_LEARN, file=self.file, sha256=self.sha256)

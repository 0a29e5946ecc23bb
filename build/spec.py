"""The model spec: a TOML file that says which model to serve and what its requests look like.

A spec names the model, its task, and either a fitted estimator file or a training recipe,
and lists the features in the column order the estimator takes. Paths in it are relative to
the spec file. `load_spec` reads and checks it; any problem is a SpecError whose message is
one line naming the key and what is accepted. The keys are documented in docs and in the
example specs under models/.
"""

from __future__ import annotations

import argparse
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    StrictStr,
    StringConstraints,
    ValidationError,
    model_validator,
)

from build import DEFAULT_SPEC, MODEL_VARIABLE, PROJECT_ROOT, configured_spec_path
from serving.codecs import all_numeric
from serving.errors import InvalidRequestError, quote
from serving.manifest import Feature, Name
from serving.schemas import RowParser

SKLEARN_DATASET_PREFIX = "sklearn:"
SKLEARN_DATASETS = ("load_iris", "load_wine", "load_breast_cancer", "load_diabetes", "load_digits")
MAX_SHOWN = 80
# The keys of a /predict body: a feature of one of these names would be read as the body's shape.
REQUEST_KEYS = ("features", "instances")
# Columns a scoring run writes itself (serving/scoring.py): a class name among them would be a
# second column of that name when probabilities are asked for.
OUTPUT_COLUMNS = ("row", "prediction", "error")
# A model name is a path segment of the model cache and of /v2 URLs: a letter or digit first, no "..".
SAFE_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_-]|\.(?!\.))*")
# The default spec as a user types it (for messages and help): the accepted keys are documented there.
DEFAULT_SPEC_SHOWN = DEFAULT_SPEC.relative_to(PROJECT_ROOT).as_posix()


class SpecError(Exception):
    """The model spec cannot be used; the message names the key and what is accepted."""


class SpecFeature(Feature):
    """A feature as the spec lists it: the manifest's fields, and whether requests' values may be captured."""

    capture: bool = Field(
        default=True,
        description="false for personal data: the feature's values are never written to the capture bucket, "
        "nor profiled for drift",
    )


class Training(BaseModel):
    """How the build trains the model, deterministically."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    data: str = Field(description='"sklearn:load_iris" (or another bundled dataset), or a CSV file with a header row')
    target: str = "target"
    estimator: str = Field(
        description='a class by dotted path ("sklearn.ensemble.RandomForestClassifier"), or "file.py:function" '
        "returning an unfitted estimator; either is called with `params`"
    )
    params: dict[str, Any] = Field(default_factory=dict)
    test_size: float = Field(default=0.2, gt=0, lt=1)
    random_state: int = 42
    missing_values: list[str] = Field(default_factory=lambda: [""], description="CSV cells read as missing")


class ModelSpec(BaseModel):
    """The whole spec. `directory` is the spec file's folder: relative paths start there."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Name
    task: Literal["classification", "regression"]
    class_names: list[Annotated[str, StringConstraints(min_length=1)]] | None = None
    estimator_file: str | None = None
    sha256: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")] | None = None
    sample_data: str | None = Field(
        default=None,
        description="with estimator_file: a CSV of rows (features, and the target if known) for the "
        "exactness gate, metrics and the deployment check",
    )
    target: str = "target"
    example: list[StrictInt | StrictFloat | StrictStr | None] | None = Field(
        default=None, description="one row in feature order for the docs (default: the first held-out row)"
    )
    training: Training | None = None
    features: list[SpecFeature] = Field(min_length=1, max_length=1000)
    directory: Path = Path()

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if (self.estimator_file is None) == (self.training is None):
            raise ValueError("give either `estimator_file` or a `[training]` table, not both or neither")
        if self.training is not None and (self.sha256 is not None or self.sample_data is not None):
            raise ValueError("`sha256` and `sample_data` go with `estimator_file`, not with `[training]`")
        if self.estimator_file is not None and self.sample_data is None:
            raise ValueError(
                "`estimator_file` needs `sample_data`: rows to prove the compiled engine and check deployments on"
            )
        if self.task == "regression" and self.class_names is not None:
            raise ValueError("`class_names` is only for task = classification")
        if not SAFE_NAME.fullmatch(self.name):
            raise ValueError('`name` must start with a letter or digit and hold no ".." (it names folders and URLs)')
        names = [feature.name for feature in self.features]
        if len(set(names)) != len(names):
            raise ValueError("two features share a name")
        clash = next((name for name in names if name in REQUEST_KEYS), None)
        if clash is not None:
            raise ValueError(
                f"a feature may not be named {clash!r}: {' and '.join(REQUEST_KEYS)} are keys of a request"
            )
        if self.class_names is not None:
            if len(set(self.class_names)) != len(self.class_names):
                repeated = next(name for name in self.class_names if self.class_names.count(name) > 1)
                raise ValueError(f"`class_names` lists {repeated!r} twice; each class needs its own name")
            reserved = next((name for name in self.class_names if name in OUTPUT_COLUMNS), None)
            if reserved is not None:
                raise ValueError(
                    f"a class may not be named {reserved!r}: {', '.join(OUTPUT_COLUMNS)} are columns of a scoring run"
                )
        if self.example is not None and len(self.example) != len(self.features):
            raise ValueError(f"`example` has {len(self.example)} values for {len(self.features)} features")
        return self

    def path(self, relative: str) -> Path:
        return (self.directory / relative).resolve()

    @property
    def all_numeric(self) -> bool:
        return all_numeric(self.features)

    @property
    def feature_names(self) -> list[str]:
        return [feature.name for feature in self.features]

    @property
    def manifest_features(self) -> list[Feature]:
        """The features as the manifest records them (the request schema, without `capture`)."""
        return [Feature.model_validate(feature.model_dump(exclude={"capture"})) for feature in self.features]

    @property
    def not_captured(self) -> list[str]:
        return [feature.name for feature in self.features if not feature.capture]


def _describe(error: ValidationError) -> str:
    """The first problem as `key`: what is wrong (got ...), and how many more there are."""
    problem = error.errors()[0]
    location = ".".join(str(part) for part in problem["loc"]) or "spec"
    if problem["type"] == "extra_forbidden":
        text = f"unknown key `{location}`; the accepted keys are documented in {DEFAULT_SPEC_SHOWN}"
    else:
        message = problem["msg"].removeprefix("Value error, ")
        got = (
            "" if problem["type"] == "missing" or not problem["loc"] else f" (got {quote(problem['input'], MAX_SHOWN)})"
        )
        text = f"`{location}`: {message}{got}"
    more = error.error_count() - 1
    return text + (f" (and {more} more problem{'s' if more > 1 else ''})" if more else "")


def add_spec_argument(parser: argparse.ArgumentParser) -> None:
    """The build commands' `--spec`, which defaults to $MODEL, else the default spec."""
    parser.add_argument(
        "--spec",
        type=Path,
        default=configured_spec_path(),
        help=f"the model spec (default: ${MODEL_VARIABLE}, else {DEFAULT_SPEC_SHOWN})",
    )


def load_spec(path: Path) -> ModelSpec:
    """The checked spec at `path`, or SpecError with one line naming what is wrong."""
    try:
        document = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise SpecError(
            f"model spec {path} not found; {MODEL_VARIABLE}= takes a path to a .toml spec such as {DEFAULT_SPEC_SHOWN}"
        ) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise SpecError(f"model spec {path} is not valid TOML: {error}") from None
    if "directory" in document:
        raise SpecError(f"model spec {path}: unknown key `directory`")
    try:
        spec = ModelSpec.model_validate({**document, "directory": path.resolve().parent})
    except ValidationError as error:
        raise SpecError(f"model spec {path}: {_describe(error)}") from None
    if spec.training is not None and spec.training.data.startswith(SKLEARN_DATASET_PREFIX):
        dataset = spec.training.data.removeprefix(SKLEARN_DATASET_PREFIX)
        if dataset not in SKLEARN_DATASETS:
            raise SpecError(
                f"model spec {path}: `training.data` {dataset!r} is not a bundled dataset; "
                f"use one of {', '.join(SKLEARN_DATASET_PREFIX + name for name in SKLEARN_DATASETS)} or a CSV file"
            )
    if spec.example is not None:
        try:
            RowParser(spec.features).parse({"features": spec.example})
        except InvalidRequestError as error:
            raise SpecError(f"model spec {path}: `example` is not a request the API accepts: {error.message}") from None
    files = {"estimator_file": spec.estimator_file, "sample_data": spec.sample_data}
    if spec.training is not None and not spec.training.data.startswith(SKLEARN_DATASET_PREFIX):
        files["training.data"] = spec.training.data
    for key, relative in files.items():
        if relative is not None and not spec.path(relative).is_file():
            raise SpecError(f"model spec {path}: `{key}` {relative!r} is not a file (paths are relative to the spec)")
    return spec

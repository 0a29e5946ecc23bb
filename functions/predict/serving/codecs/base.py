"""What every feature type's codec offers (MLServer's `codecs/base.py` is the model).

A codec is bound to one feature of the model and owns everything its type decides: the JSON
value a /predict body may hold for it (as a pydantic type and as JSON Schema), how a CSV cell
is read as that JSON value (one cell, and a whole column on the scoring fast path), the Open
Inference Protocol datatypes its tensor may have and how that tensor's values are decoded, how
a training CSV's cell is read, which definitions of the feature are valid, and how its column
of training rows is profiled for drift. Every other
module asks the feature's codec (serving.codecs.codec_for) rather than testing its type.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    from serving.manifest import CategoryProfile, Feature, NumberProfile

# The text of a missing value in a CSV cell, as the API is sent JSON null.
MISSING_CELL = ""


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema`, or JSON null."""
    return {"anyOf": [schema, {"type": "null"}]}


class FeatureCodec(ABC):
    """One feature's rules; subclasses set the class attributes and implement the methods."""

    type_name: ClassVar[str]
    """The feature's `type` in the model spec and manifest."""
    numeric: ClassVar[bool]
    """Its values reach the model as float64: a model whose features are all numeric takes one
    float64 matrix (and one [N, features] protocol tensor), others an object array."""
    datatypes: ClassVar[tuple[str, ...]]
    """The protocol datatypes a tensor of this feature may have."""
    metadata_datatype: ClassVar[str]
    """The datatype the model's protocol metadata and examples give it."""

    def __init__(self, feature: Feature) -> None:
        self.feature = feature
        self.allow_missing = feature.allow_missing

    @classmethod
    @abstractmethod
    def check(cls, feature: Feature) -> None:
        """Raise ValueError, saying why, if `feature` is not a valid definition of this type."""

    # The JSON a /predict body holds.

    @property
    @abstractmethod
    def json_type(self) -> Any:
        """The pydantic type one JSON value is validated as (null, where allowed, becomes NaN)."""

    @abstractmethod
    def value_schema(self) -> dict[str, Any]:
        """One value in JSON Schema, null aside."""

    def json_schema(self) -> dict[str, Any]:
        """One value in JSON Schema, exactly as `json_type` validates it."""
        schema = self.value_schema()
        return nullable(schema) if self.allow_missing else schema

    def describe(self) -> str:
        """What a value is, for a message: "number", "category or null"."""
        return self.type_name + (" or null" if self.allow_missing else "")

    # CSV cells (every cell a string), read as the JSON the API would be sent.

    def read_cell(self, cell: str) -> Any:
        """A CSV cell as a JSON value: empty is null, else `read_text`'s."""
        return None if cell == MISSING_CELL else self.read_text(cell)

    @abstractmethod
    def read_text(self, cell: str) -> Any:
        """A non-empty cell as a JSON value (the validation then accepts or refuses it)."""

    @abstractmethod
    def read_cells(self, cells: list[str]) -> tuple[NDArray[Any], NDArray[np.bool_]]:
        """A column of cells as the values `json_type` gives for `read_cell` of each, and which of
        them it accepts (values at refused cells are unspecified): the scoring fast path."""

    # The Open Inference Protocol.

    @abstractmethod
    def decode(self, values: Sequence[Any], datatype: str, where: str) -> NDArray[Any]:
        """A tensor's flat `data` (one of `datatypes`) as the column the model is given; a value
        that does not fit is a BadRequestError naming it at `where`."""

    @abstractmethod
    def protocol_schemas(self) -> list[tuple[list[str], dict[str, Any]]]:
        """Per group of datatypes, one value's JSON Schema in `data` (null aside)."""

    # The build's training and sample CSVs.

    @abstractmethod
    def training_value(self, cell: str) -> Any:
        """A training CSV's non-missing cell as the value the estimator is fitted on; ValueError
        saying why when it is not one."""

    # The training profile that drift is measured against (serving/profile.py).

    @abstractmethod
    def profile(self, column: NDArray[Any]) -> NumberProfile | CategoryProfile:
        """The profile of the feature's column of profiled rows (missing values NaN or None)."""

"""The category feature: a JSON string, one of the feature's `categories`, given to the model as is.

A refusal lists the accepted values, at most MAX_LISTED_CATEGORIES of them, each quoted short, so
the message stays bounded however many there are. The protocol takes BYTES data (JSON strings).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
from numpy.typing import NDArray
from pydantic import PlainValidator, TypeAdapter, ValidationError
from pydantic_core import PydanticCustomError

from serving.codecs.base import MISSING_CELL, FeatureCodec
from serving.errors import BadRequestError, describe_problems, quote

if TYPE_CHECKING:
    from serving.manifest import CategoryProfile, Feature

BYTES = "BYTES"
MAX_LISTED_CATEGORIES = 10
MAX_QUOTED_CATEGORY_CHARS = 24


class CategoryCodec(FeatureCodec):
    type_name = "category"
    numeric = False
    datatypes = (BYTES,)
    metadata_datatype = BYTES

    def __init__(self, feature: Feature) -> None:
        super().__init__(feature)
        self.categories = list(feature.categories or [])
        self.allowed = frozenset(self.categories)
        self.message = f"Input should be {self.accepted()}"
        self._json_type = Annotated[Any, PlainValidator(self._check)]
        # A tensor's values validated in one call, its problems located by index.
        self._column: TypeAdapter[list[Any]] = TypeAdapter(list.__class_getitem__(self._json_type))

    @classmethod
    def check(cls, feature: Feature) -> None:
        if not feature.categories:
            raise ValueError("a category feature lists its accepted values in `categories`")
        if len(set(feature.categories)) != len(feature.categories):
            raise ValueError("`categories` lists a value twice")

    def accepted(self) -> str:
        """The accepted values for a message, bounded however many there are."""
        listed = ", ".join(quote(value, MAX_QUOTED_CATEGORY_CHARS) for value in self.categories[:MAX_LISTED_CATEGORIES])
        more = len(self.categories) - MAX_LISTED_CATEGORIES
        listed += f" and {more} more (see GET /model)" if more > 0 else ""
        return f"one of {listed}" + (" or null" if self.allow_missing else "")

    def _check(self, value: Any) -> str | float:
        if type(value) is str and value in self.allowed:
            return value
        if value is None and self.allow_missing:
            return math.nan
        # The message goes in the context: a template would read braces in a category as placeholders.
        # Not mutated, equivalent: pydantic's error type is in no message a client gets.
        raise PydanticCustomError("category", "{accepted}", {"accepted": self.message})  # pragma: no mutate

    @property
    def json_type(self) -> Any:
        return self._json_type

    def value_schema(self) -> dict[str, Any]:
        return {"type": "string", "enum": self.categories}

    def read_text(self, cell: str) -> Any:
        return cell

    def read_cells(self, cells: list[str]) -> tuple[NDArray[Any], NDArray[np.bool_]]:
        missing = self.allow_missing
        accepted = (cell in self.allowed or (missing and cell == MISSING_CELL) for cell in cells)
        # Not mutated, equivalent: the count only sizes the array ahead; fromiter reads to the end without it.
        read = np.fromiter(accepted, bool, len(cells))  # pragma: no mutate
        return np.array([math.nan if cell == MISSING_CELL else cell for cell in cells], dtype=object), read

    def decode(self, values: Sequence[Any], datatype: str, where: str) -> NDArray[Any]:
        try:
            categories = self._column.validate_python(values)
        except ValidationError as error:
            raise BadRequestError(describe_problems(error.errors(), f"{where}.data")) from error
        column = np.empty(len(categories), dtype=object)
        column[:] = categories
        return column

    def protocol_schemas(self) -> list[tuple[list[str], dict[str, Any]]]:
        return [([BYTES], self.value_schema())]

    def training_value(self, cell: str) -> str:
        if cell not in self.allowed:
            raise ValueError(f"is not one of the feature's categories {self.categories}")
        return cell

    def profile(self, column: NDArray[Any]) -> CategoryProfile:
        # Imported here: serving.profile imports the manifest's schema, which imports the codecs.
        from serving.profile import category_profile

        return category_profile(column.tolist(), self.categories)

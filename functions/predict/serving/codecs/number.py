"""The number feature: a finite JSON number within float32 range, float64 for the model.

scikit-learn's trees compare features as float32: a larger magnitude would silently become
infinity, so it is refused. Nothing is coerced: strings, booleans, NaN and Infinity are refused.
A CSV cell is a number only when it is a plain decimal (`-1.5`, `2e3`: no spaces, no `nan` or
`inf`, no `_`); any other text stays a string and is refused. The protocol takes FP32, FP64 or
INT64 data; an FP32 value is a float32, so it is rounded to float32 before the model sees it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
from numpy.typing import NDArray
from pydantic import AfterValidator, Field
from pydantic_core import PydanticCustomError

from serving.codecs.base import MISSING_CELL, FeatureCodec
from serving.errors import BadRequestError, quote

if TYPE_CHECKING:
    from serving.manifest import Feature, NumberProfile

FLOAT32_MAX = 3.4028234663852886e38
FLOAT_DATATYPES, FP32, INTEGER_DATATYPE = ["FP32", "FP64"], "FP32", "INT64"
# Every integer up to 2**53 in magnitude is exact in float64, the type the model is given.
LARGEST_EXACT_INTEGER = 2**53
# A cell read as a number: an ASCII decimal (\d would take any script's digits); no two parts can
# match the same digits, so a long cell costs linear time, not quadratic.
NUMBER_TEXT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
# A column's cells joined: if float() reads each cell and the cells hold only these characters,
# each is a plain decimal (float() alone would also take spaces, "nan", "inf", "1_000" and other
# scripts' digits, which the text rules keep as text).
DECIMAL_CHARACTERS = re.compile(r"[0-9+\-.eE]*")
FLOAT_SCHEMA = {"type": "number", "minimum": -FLOAT32_MAX, "maximum": FLOAT32_MAX}
INTEGER_SCHEMA = {"type": "integer", "minimum": -LARGEST_EXACT_INTEGER, "maximum": LARGEST_EXACT_INTEGER}
FLOAT32_RANGE_MESSAGE = "Input should be within ±3.4e38, the range the model compares features in"


def _within_float32(value: float) -> float:
    if abs(value) > FLOAT32_MAX:
        # Not mutated, equivalent: pydantic's error type is in no message a client gets.
        raise PydanticCustomError("float32_range", FLOAT32_RANGE_MESSAGE)  # pragma: no mutate
    return value


def _missing_as_nan(value: float | None) -> float:
    return math.nan if value is None else value


FiniteNumber = Annotated[float, Field(strict=True, allow_inf_nan=False), AfterValidator(_within_float32)]
"""A JSON number within float32 range: strings, booleans, null, NaN/Infinity and overflows are rejected."""


def decode_numbers(values: Sequence[Any], datatype: str, where: str, nullable: list[bool]) -> NDArray[np.float64]:
    """Protocol `data` of numbers, validated, as float64; nothing is coerced from strings or booleans.
    `nullable` says, per column of the row-major `values`, whether JSON null is accepted there (as
    NaN: the protocol has none). FP32 values are rounded to float32, as the datatype says they are."""
    integers = datatype == INTEGER_DATATYPE
    limit = LARGEST_EXACT_INTEGER if integers else FLOAT32_MAX
    columns = len(nullable)
    for index, value in enumerate(values):
        if value is None and nullable[index % columns]:
            continue
        # JSON (and JSON Schema's "integer") does not tell 822.0 from 822: an integral value is an integer.
        if type(value) not in (int, float) or (integers and type(value) is float and not value.is_integer()):
            kind = ("integers" if integers else "numbers") + (" or null" if nullable[index % columns] else "")
            raise BadRequestError(f"{where}.data[{index}] is {quote(value)}; {datatype} data must be JSON {kind}")
        # Python compares an integer with the limit exactly; float64 would overflow or round first.
        if type(value) is int and abs(value) > limit:
            raise _out_of_range(where, index, value, limit)
    array = np.asarray(values, dtype=np.float64)  # null becomes NaN
    bad = ~np.isfinite(array) | (np.abs(array) > limit)
    if any(nullable):
        # Not mutated, equivalent: a list of bools is a bool array, and protocol data is never empty.
        bad &= np.asarray([value is not None for value in values], dtype=bool)  # pragma: no mutate
    outside = np.flatnonzero(bad)
    if outside.size:
        raise _out_of_range(where, int(outside[0]), values[outside[0]], limit)
    if datatype == FP32:
        # Within ±FLOAT32_MAX, so no value rounds to infinity; NaN stays NaN.
        # Not mutated, equivalent: numpy's default dtype is float64.
        return array.astype(np.float32).astype(np.float64)  # pragma: no mutate
    return array


def _out_of_range(where: str, index: int, value: Any, limit: float) -> BadRequestError:
    return BadRequestError(f"{where}.data[{index}] is {quote(value)}; values must be finite and within ±{limit:.17g}")


class NumberCodec(FeatureCodec):
    type_name = "number"
    numeric = True
    datatypes = (*FLOAT_DATATYPES, INTEGER_DATATYPE)
    metadata_datatype = "FP64"

    @classmethod
    def check(cls, feature: Feature) -> None:
        if feature.categories is not None:
            raise ValueError("`categories` is only for features of type category")

    @property
    def json_type(self) -> Any:
        if self.allow_missing:
            return Annotated[FiniteNumber | None, AfterValidator(_missing_as_nan)]
        return FiniteNumber

    def value_schema(self) -> dict[str, Any]:
        return dict(FLOAT_SCHEMA)

    def read_text(self, cell: str) -> Any:
        return float(cell) if NUMBER_TEXT.fullmatch(cell) else cell

    def read_cells(self, cells: list[str]) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
        # Not mutated, equivalent: a separator in the join only sends every column cell by cell, read alike.
        if DECIMAL_CHARACTERS.fullmatch("".join(cells)):  # pragma: no mutate
            try:
                # Not mutated, equivalent: numpy's default dtype is float64; the count only sizes the array ahead.
                numbers = np.fromiter(map(float, cells), np.float64, len(cells))  # pragma: no mutate
            except ValueError:  # a cell of those characters that is no number ("", "1-2", "e"): cell by cell
                pass
            else:
                return numbers, np.abs(numbers) <= FLOAT32_MAX
        read = [
            NUMBER_TEXT.fullmatch(cell) is not None or (self.allow_missing and cell == MISSING_CELL) for cell in cells
        ]
        # Not mutated, equivalent: `read` has one entry per cell, so `strict` never fires.
        pairs = zip(cells, read, strict=True)  # pragma: no mutate
        values = (float(cell) if ok and cell else math.nan for cell, ok in pairs)
        # Not mutated, equivalent: numpy's default dtype is float64; the count only sizes the array ahead.
        numbers = np.fromiter(values, np.float64, len(cells))  # pragma: no mutate
        # Not mutated, equivalent: `read` holds bools, never none (an empty column takes the path above).
        accepted = np.array(read, dtype=bool)  # pragma: no mutate
        # NaN (a missing value) is not above the limit: kept.
        return numbers, accepted & ~(np.abs(numbers) > FLOAT32_MAX)

    def decode(self, values: Sequence[Any], datatype: str, where: str) -> NDArray[np.float64]:
        return decode_numbers(values, datatype, where, [self.allow_missing])

    def protocol_schemas(self) -> list[tuple[list[str], dict[str, Any]]]:
        return [(FLOAT_DATATYPES, self.value_schema()), ([INTEGER_DATATYPE], dict(INTEGER_SCHEMA))]

    def training_value(self, cell: str) -> float:
        try:
            number = float(cell)
        except ValueError:
            raise ValueError("is not a number") from None
        if not math.isfinite(number):
            raise ValueError("is not a finite number")
        return number

    def profile(self, column: NDArray[Any]) -> NumberProfile:
        # Imported here: serving.profile imports the manifest's schema, which imports the codecs.
        from serving.profile import number_profile

        return number_profile(np.asarray(column, dtype=np.float64))

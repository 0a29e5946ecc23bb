"""Scoring many records at once (rows of a file) with the API's own validation and engine.

A record is one input row keyed by column name, as a CSV reader (`text=True`: every cell a
string) or a JSON Lines reader (typed values) gives it. Columns the model does not take are
ignored. A CSV cell is read as the JSON value the API would be sent: an empty cell is null (so
accepted only where the feature has `allow_missing`), a number feature's cell that is a plain
decimal number (`-1.5`, `2e3`; no spaces, no `nan`/`inf`, no `_`) is that number, and any
other text stays a string, which a number feature then rejects. The rows are then validated by
the same types as the API's (serving.schemas), predicted by the same model call, and each bad
row gets exactly the message the API answers when that row is POSTed to /predict by name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import ConfigDict, TypeAdapter, ValidationError, with_config

from serving.errors import InvalidRequestError, NoProbabilitiesError
from serving.model import LoadedModel
from serving.schemas import RowParser, value_type

# A number feature's CSV cell read as a number: an ASCII decimal (\d would take any script's digits);
# no two parts can match the same digits, so a long cell costs linear time, not quadratic.
NUMBER_TEXT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
ROW = "row"
PREDICTION = "prediction"
ERROR = "error"
DEFAULT_ID_COLUMN = "id"

Record = dict[str, Any]


@dataclass(frozen=True)
class Scored:
    """One batch's outcome, each list in input order: every record is in exactly one of them."""

    predictions: list[Record]
    """{"row": n} or {<id column>: id}, then "prediction" and, if asked, one key per class name."""
    errors: list[Record]
    """{"row": n} (and the id, if the record has one), then "error": the API's message."""


def _cell_count_error(record: Mapping[Any, Any]) -> str | None:
    """csv.DictReader's marks of a row whose cell count differs from the header's: extra cells
    under the key None, missing ones as the value None."""
    header = sum(key is not None for key in record)
    extra = record.get(None)
    cells = sum(value is not None for key, value in record.items() if key is not None) + len(extra or [])
    if cells == header:
        return None
    return f"invalid row: expected {header} cells, as the header names, got {cells}"


class Scorer:
    """Scores batches of records with `model`; `id_column`'s value, where a record has one, is
    copied to its prediction or error in place of the row number."""

    def __init__(self, model: LoadedModel, id_column: str = DEFAULT_ID_COLUMN, probabilities: bool = False) -> None:
        manifest = model.manifest
        if probabilities and manifest.task != "classification":
            raise NoProbabilitiesError(manifest.name)
        self.model = model
        self.id_column = id_column
        self.probabilities = probabilities
        self.parser = RowParser(manifest.features)
        self.names = self.parser.feature_names
        self.numbers = frozenset(feature.name for feature in manifest.features if feature.type == "number")
        # The API's per-row types (serving.schemas.value_type) over a whole list: one validation
        # call per batch, not one per row; a row it rejects is re-validated alone for the message.
        named_row: Any = with_config(ConfigDict(extra="forbid"))(
            _typed_dict({feature.name: value_type(feature) for feature in manifest.features})
        )
        self.rows: TypeAdapter[list[dict[str, Any]]] = TypeAdapter(list.__class_getitem__(named_row))

    def _from_text(self, record: Mapping[Any, Any]) -> Any:
        values: dict[str, Any] = {}
        for name in self.names:
            if name in record:
                cell = record[name]
                if cell == "":
                    values[name] = None
                elif name in self.numbers and NUMBER_TEXT.fullmatch(cell):
                    values[name] = float(cell)
                else:
                    values[name] = cell
        return values

    def _features(self, record: Any, text: bool) -> Any:
        """The record's model columns as a /predict body by name; a non-object stays as it is."""
        if not isinstance(record, Mapping):
            return record
        return self._from_text(record) if text else {name: record[name] for name in self.names if name in record}

    def api_message(self, body: Any) -> str:
        """What /predict answers for `body` (a row by name) when it rejects it."""
        try:
            self.parser.parse(body)
        except InvalidRequestError as error:
            return error.message
        raise AssertionError("a row the batch validation rejected was accepted alone")

    def _key(self, record: Any, row: int) -> Record:
        if isinstance(record, Mapping) and self.id_column in record:
            return {self.id_column: record[self.id_column]}
        return {ROW: row}

    def score(self, records: Sequence[Any], first_row: int = 1, text: bool = False) -> Scored:
        """Score `records`, numbered from `first_row`; `text`: they come from CSV (cells are strings)."""
        bodies: list[Any] = []
        problems: dict[int, str] = {}
        for index, record in enumerate(records):
            problem = _cell_count_error(record) if text and isinstance(record, Mapping) else None
            if problem is not None:
                problems[index] = problem
            bodies.append(None if problem is not None else self._features(record, text))
        candidates = [index for index in range(len(records)) if index not in problems]
        try:
            valid = self.rows.validate_python([bodies[index] for index in candidates])
        except ValidationError as error:
            rejected = {candidates[int(problem["loc"][0])] for problem in error.errors() if problem["loc"]}
            problems.update({index: self.api_message(bodies[index]) for index in rejected})
            candidates = [index for index in candidates if index not in rejected]
            valid = self.rows.validate_python([bodies[index] for index in candidates])
        predicted = self._predict(valid, candidates, problems)
        predictions = [
            {**self._key(records[index], first_row + index), **predicted[index]}
            for index in range(len(records))
            if index in predicted
        ]
        errors = [
            {ROW: first_row + index, **self._key(records[index], first_row + index), ERROR: problems[index]}
            for index in sorted(problems)
        ]
        return Scored(predictions, errors)

    def _predict(self, valid: list[dict[str, Any]], indices: list[int], problems: dict[int, str]) -> dict[int, Record]:
        """Each valid row's prediction by record index; a row the model itself refuses (rare: the
        engine's own input checks) is found by predicting the batch's rows one at a time."""
        if not valid:
            return {}
        rows = np.array([tuple(row[name] for name in self.names) for row in valid], dtype=self.parser.dtype)
        try:
            return dict(zip(indices, self._outputs(rows), strict=True))
        except InvalidRequestError:
            outputs: dict[int, Record] = {}
            for index, row in zip(indices, rows, strict=True):
                try:
                    outputs[index] = self._outputs(row[np.newaxis, :])[0]
                except InvalidRequestError as error:
                    problems[index] = error.message
            return outputs

    def _outputs(self, rows: Any) -> list[Record]:
        predicted = self.model.predict(rows, self.probabilities)
        if predicted.probabilities is None:
            return [{PREDICTION: label} for label in predicted.labels]
        names = self.model.manifest.class_names
        return [
            {PREDICTION: label, **dict(zip(names, row, strict=True))}
            for label, row in zip(predicted.labels, predicted.probabilities.tolist(), strict=True)
        ]


def _typed_dict(fields: dict[str, Any]) -> Any:
    """A TypedDict with keys known only at run time (as serving.schemas builds the API's)."""
    from typing import TypedDict

    factory: Any = TypedDict
    return factory("NamedRow", fields)

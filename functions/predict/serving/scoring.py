"""Scoring many records at once (rows of a file) with the API's own validation and engine.

A record is one input row keyed by column name, as a CSV reader (`text=True`: every cell a
string) or a JSON Lines reader (typed values) gives it. Columns the model does not take are
ignored. A CSV cell is read as the JSON value the API would be sent, by its feature's codec
(serving/codecs/): an empty cell is null (so accepted only where the feature has `allow_missing`),
a number feature's cell that is a plain decimal number (`-1.5`, `2e3`; no spaces, no `nan`/`inf`,
no `_`) is that number, and any other text stays a string, which a number feature then rejects.
The rows are then validated by the same types as the API's (serving.schemas), predicted by the
same model call, and each bad row gets exactly the message the API answers when that row is
POSTed to /predict by name.

CSV rows take a fast path first: a chunk's cells are checked column by column against the same
rules (each codec's `read_cells`: a number column read with float() and its characters checked
in one regular expression call, its float32 range with numpy) and the rows that pass go straight
to the model as one array. Only the rows it does not pass (any failed check, a wrong cell count) go through the
per-row validation above, so every message is the API's and every value the one it would give.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydantic import TypeAdapter, ValidationError

from serving.errors import InvalidRequestError, NoProbabilitiesError, quote
from serving.model import LoadedModel
from serving.schemas import RowParser

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


def as_record(header: Sequence[str], row: Sequence[str]) -> dict[Any, Any]:
    """The dict csv.DictReader makes of `row` under `header` (extra cells under None, missing ones None)."""
    record: dict[Any, Any] = dict(zip(header, row, strict=False))
    if len(row) > len(header):
        record[None] = list(row[len(header) :])
    for name in header[len(row) :]:
        record[name] = None
    return record


class Scorer:
    """Scores batches of records with `model`. With an `id_column`, every record's value of it is
    copied, as it is, to its prediction or error (a record without one is an error row); with
    None, every record is keyed by its row number. Either way the key is the same on every line."""

    def __init__(
        self, model: LoadedModel, id_column: str | None = DEFAULT_ID_COLUMN, probabilities: bool = False
    ) -> None:
        manifest = model.manifest
        if probabilities and manifest.task != "classification":
            raise NoProbabilitiesError(manifest.name)
        if probabilities and manifest.no_probabilities:
            raise InvalidRequestError(manifest.no_probabilities)
        # The output's own columns cannot be an id column or a class's probability column too.
        written = [ROW, PREDICTION, ERROR]
        if id_column in written:
            raise InvalidRequestError(
                f"id column {quote(id_column)} is a column the output has already ({', '.join(written)}); "
                "name the column that holds your ids"
            )
        taken = [*written, *([id_column] if id_column is not None else [])]
        clash = next((name for name in manifest.class_names if name in taken), None) if probabilities else None
        if clash is not None:
            raise InvalidRequestError(
                f"probabilities: the class name {quote(clash)} would be a second column of that name beside "
                f"{', '.join(map(quote, taken))}; rename the id column or score without probabilities"
            )
        self.model = model
        self.id_column = id_column
        self.probabilities = probabilities
        self.parser = RowParser(manifest.features)
        self.names = self.parser.feature_names
        # The API's row type over a whole list: one validation call per batch, not one per row;
        # a row it rejects is re-validated alone for the message.
        self.rows: TypeAdapter[list[dict[str, Any]]] = TypeAdapter(list.__class_getitem__(self.parser.named_row))

    def _from_text(self, record: Mapping[Any, Any]) -> Any:
        codecs = zip(self.names, self.parser.codecs, strict=True)
        return {name: codec.read_cell(record[name]) for name, codec in codecs if name in record}

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

    def _key(self, record: Any, row: int) -> tuple[str, Any]:
        """The column and value a record's outcome is keyed by: its id, or its row number (also
        for a record that lacks the id column, which is then rejected)."""
        if self.id_column is not None and isinstance(record, Mapping) and self.id_column in record:
            return self.id_column, record[self.id_column]
        return ROW, row

    def score(self, records: Sequence[Any], first_row: int = 1, text: bool = False) -> Scored:
        """Score `records`, numbered from `first_row`; `text`: they come from CSV (cells are strings)."""
        keys = [self._key(record, first_row + index) for index, record in enumerate(records)]
        outcome = _Outcome([name for name, _ in keys], [value for _, value in keys])
        if self.id_column is not None:
            missing = f"no {quote(self.id_column)}: every row of a file with ids needs its id"
            lacking = [
                index for index, record in enumerate(records) if isinstance(record, Mapping) and keys[index][0] == ROW
            ]
            outcome.problems.update(dict.fromkeys(lacking, missing))
        if text:
            # Records with the header's cell count and every feature (as text) can take the fast path.
            whole = [
                index
                for index, record in enumerate(records)
                if isinstance(record, Mapping)
                and index not in outcome.problems
                and _cell_count_error(record) is None
                and all(name in record for name in self.names)
            ]
            columns = [[records[index][name] for index in whole] for name in self.names]
            if all(type(cell) is str for column in columns for cell in column):
                self._score_fast(columns, whole, outcome)
        self._score_slow(records, outcome.undecided(len(records)), text, outcome)
        return outcome.scored(first_row)

    def score_table(self, header: Sequence[str], rows: Sequence[Sequence[str]], first_row: int = 1) -> Scored:
        """Score CSV rows as csv.reader gives them under `header`: the same result as
        `score([csv.DictReader's dict of each row], first_row, text=True)`, without building the dicts."""
        at = {name: index for index, name in enumerate(header)}  # a repeated name: its last column, as DictReader
        widths = list(map(len, rows))
        every_row_whole = widths.count(len(header)) == len(rows)
        id_column = self.id_column
        id_at = None if id_column is None else at.get(id_column)
        if id_column is None or id_at is None:
            outcome = _Outcome([ROW] * len(rows), range(first_row, first_row + len(rows)))
        elif every_row_whole:
            outcome = _Outcome([id_column] * len(rows), [row[id_at] for row in rows])
        else:
            ids = [row[id_at] if id_at < width else None for row, width in zip(rows, widths, strict=True)]
            outcome = _Outcome([id_column] * len(rows), ids)
        if all(name in at for name in self.names):
            if every_row_whole:
                whole, source = list(range(len(rows))), rows
            else:
                whole = [index for index, width in enumerate(widths) if width == len(header)]
                source = [rows[index] for index in whole]
            self._score_fast([[row[at[name]] for row in source] for name in self.names], whole, outcome)
        slow = outcome.undecided(len(rows))
        self._score_slow({index: as_record(header, rows[index]) for index in slow}, slow, True, outcome)
        return outcome.scored(first_row)

    def _score_fast(self, columns: list[list[str]], indices: list[int], outcome: _Outcome) -> None:
        """Predict the rows (`indices`, one list of cells per feature) whose every cell passes the
        text rules and the API's types; the others are left undecided, for the per-row path."""
        passed = np.ones(len(indices), dtype=bool)
        values: list[Any] = []
        for codec, cells in zip(self.parser.codecs, columns, strict=True):
            column, ok = codec.read_cells(cells)
            passed &= ok
            values.append(column)
        good: list[int] = np.asarray(indices, dtype=np.intp)[passed].tolist()
        if not good:
            return
        if self.parser.all_numeric:
            rows = np.column_stack(values)[passed]
        else:
            rows = np.empty((len(good), len(values)), dtype=object)
            for position, column in enumerate(values):
                rows[:, position] = column[passed]
        self._predict(rows, good, outcome)

    def _score_slow(self, records: Any, indices: list[int], text: bool, outcome: _Outcome) -> None:
        """Validate and predict `records[index]` for each of `indices` row by row, with the API's messages."""
        bodies: dict[int, Any] = {}
        for index in indices:
            record = records[index]
            problem = _cell_count_error(record) if text and isinstance(record, Mapping) else None
            if problem is not None:
                outcome.problems[index] = problem
            else:
                bodies[index] = self._features(record, text)
        candidates = list(bodies)
        if not candidates:
            return
        try:
            valid = self.rows.validate_python([bodies[index] for index in candidates])
        except ValidationError as error:
            rejected = {candidates[int(problem["loc"][0])] for problem in error.errors() if problem["loc"]}
            outcome.problems.update({index: self.api_message(bodies[index]) for index in rejected})
            candidates = [index for index in candidates if index not in rejected]
            valid = self.rows.validate_python([bodies[index] for index in candidates])
        if valid:
            rows = np.array([tuple(row[name] for name in self.names) for row in valid], dtype=self.parser.dtype)
            self._predict(rows, candidates, outcome)

    def _predict(self, rows: Any, indices: list[int], outcome: _Outcome) -> None:
        """Each valid row's prediction, by record index; a row the model itself refuses (rare: the
        engine's own input checks) is found by predicting the batch's rows one at a time."""
        try:
            outcome.predicted.update(zip(indices, self._outputs(rows, indices, outcome), strict=True))
        except InvalidRequestError:
            for index, row in zip(indices, rows, strict=True):
                try:
                    outcome.predicted[index] = self._outputs(row[np.newaxis, :], [index], outcome)[0]
                except InvalidRequestError as error:
                    outcome.problems[index] = error.message

    def _outputs(self, rows: Any, indices: list[int], outcome: _Outcome) -> list[Record]:
        """The prediction records of `rows` (records `indices`): the key, "prediction", and if asked
        one probability per class name."""
        predicted = self.model.predict(rows, self.probabilities)
        names, values = outcome.key_names, outcome.key_values
        if predicted.probabilities is None:
            return [
                {names[index]: values[index], PREDICTION: label}
                for index, label in zip(indices, predicted.labels, strict=True)
            ]
        classes = self.model.manifest.class_names
        return [
            {names[index]: values[index], PREDICTION: label, **dict(zip(classes, row, strict=True))}
            for index, label, row in zip(indices, predicted.labels, predicted.probabilities.tolist(), strict=True)
        ]


@dataclass
class _Outcome:
    """A batch being scored: each record's key (its id column and value, or "row" and its number),
    and by record index its prediction record or its error message."""

    key_names: Sequence[str]
    key_values: Sequence[Any]
    predicted: dict[int, Record] = field(default_factory=dict)
    problems: dict[int, str] = field(default_factory=dict)

    def undecided(self, count: int) -> list[int]:
        """The indices, of `count` records, neither predicted nor rejected yet."""
        if len(self.predicted) == count:
            return []
        return [index for index in range(count) if index not in self.predicted and index not in self.problems]

    def scored(self, first_row: int) -> Scored:
        """Predictions and errors in input order."""
        names, values = self.key_names, self.key_values
        return Scored(
            [self.predicted[index] for index in sorted(self.predicted)],
            [
                {ROW: first_row + index, names[index]: values[index], ERROR: self.problems[index]}
                for index in sorted(self.problems)
            ],
        )

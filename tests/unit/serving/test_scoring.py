"""The scoring core (serving/scoring.py): records as CSV or JSON Lines give them, validated and
predicted exactly as the API does, each in exactly one of predictions or errors."""

from __future__ import annotations

import itertools
import math
import re
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from local.lambda_runtime import LambdaContext
from serving.codecs.number import DECIMAL_CHARACTERS
from serving.errors import InvalidRequestError, NoProbabilitiesError
from serving.scoring import ERROR, PREDICTION, ROW, Scorer, as_record
from tests.events import http_api_event, response_json
from tests.shared import examples

NAMES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
# A value as JSON would carry it, with the CSV cell that stands for it; the Arabic-Indic digit one
# is a digit to \d and to float(), not a number to the API.
GOOD_NUMBER = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False).map(lambda value: (value, repr(value)))
BAD_TEXT = st.sampled_from(["abc", " 1.5", "1.5 ", "nan", "inf", "-Infinity", "1_000", "0x10", "1,5", "\u0661"])
VALUE = st.one_of(
    GOOD_NUMBER,
    st.integers(-1000, 1000).map(lambda value: (float(value), str(value))),
    st.just((None, "")),
    BAD_TEXT.map(lambda text: (text, text)),
    st.just((1e39, "1e39")),
)


@st.composite
def records(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, str], dict[str, Any]]:
    """(the record as JSON Lines gives it, as CSV gives it, the /predict body it stands for)."""
    typed: dict[str, Any] = {}
    text: dict[str, str] = {}
    for name in NAMES:
        if draw(st.integers(0, 30)) == 0:
            continue  # the column is absent
        value, cell = draw(VALUE)
        typed[name], text[name] = value, cell
    if draw(st.booleans()):
        typed["comment"] = text["comment"] = draw(st.text(max_size=5))
    body = {name: value for name, value in typed.items() if name in NAMES}
    return typed, text, body


def api(app_module: ModuleType, body: Any, query: dict[str, str] | None = None) -> tuple[int, Any]:
    response = app_module.handler(http_api_event(body=body, query=query), LambdaContext())
    return response["statusCode"], response_json(response)


@settings(max_examples=examples(0.8), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=st.lists(records(), max_size=12), text=st.booleans(), first=st.integers(1, 10**6))
def test_every_record_is_predicted_as_the_api_would_or_rejected_with_its_message(
    app_module: ModuleType, batch: list[tuple[dict[str, Any], dict[str, str], dict[str, Any]]], text: bool, first: int
) -> None:
    scorer = Scorer(app_module.model, id_column=None, probabilities=True)
    scored = scorer.score([record[1] if text else record[0] for record in batch], first_row=first, text=text)

    numbers = [item[ROW] for item in scored.predictions + scored.errors]
    assert sorted(numbers) == list(range(first, first + len(batch)))
    by_row = {item[ROW]: item for item in scored.predictions}
    for number, (_, _, body) in enumerate(batch, start=first):
        status, answer = api(app_module, body, {"probabilities": "true"})
        if status == 200:
            assert by_row[number] == {
                ROW: number,
                PREDICTION: answer["prediction"],
                **answer["probabilities"],
            }
        else:
            assert status == 422
            [error] = [item for item in scored.errors if item[ROW] == number]
            assert error == {ROW: number, ERROR: answer["error"]}


def test_a_csv_row_with_more_or_fewer_cells_than_the_header_is_rejected(app_module: ModuleType) -> None:
    good = dict(zip(NAMES, ["6.1", "2.8", "4.7", "1.2"], strict=True))
    short = {**good, "petal_width": None}
    long = {**good, None: ["7", "8"]}  # csv.DictReader puts extra cells under None

    scored = Scorer(app_module.model, id_column=None).score([short, good, long], text=True)

    assert scored.predictions == [{ROW: 2, PREDICTION: 1}]
    assert scored.errors == [
        {ROW: 1, ERROR: "invalid row: expected 4 cells, as the header names, got 3"},
        {ROW: 3, ERROR: "invalid row: expected 4 cells, as the header names, got 6"},
    ]


def test_the_id_column_is_copied_in_place_of_the_row_number(app_module: ModuleType) -> None:
    rows: list[Any] = [
        {"key": "a", **dict(zip(NAMES, [6.1, 2.8, 4.7, 1.2], strict=True))},
        {"key": "b", "sepal_length": "x"},
        [6.1, 2.8, 4.7, 1.2],
    ]

    scored = Scorer(app_module.model, id_column="key").score(rows)

    assert scored.predictions == [{"key": "a", PREDICTION: 1}]
    assert [(error[ROW], error.get("key")) for error in scored.errors] == [(2, "b"), (3, None)]
    assert scored.errors[1][ERROR].startswith("request body must be a JSON object (got [6.1, 2.8, 4.7, 1.2])")


def test_error_messages_stay_bounded_whatever_the_cell(app_module: ModuleType) -> None:
    scored = Scorer(app_module.model, id_column=None).score([dict.fromkeys(NAMES, "9" * 100_000 + "x")], text=True)

    assert len(scored.errors[0][ERROR]) < 2000


def test_a_number_cell_is_read_as_its_decimal_value_exactly(app_module: ModuleType) -> None:
    cells = ["6.1", "+2.8", "4.70e0", ".12e1"]
    scorer = Scorer(app_module.model, id_column=None)

    from_text = scorer.score([dict(zip(NAMES, cells, strict=True))], text=True)
    typed = scorer.score([dict(zip(NAMES, [6.1, 2.8, 4.7, 1.2], strict=True))])

    assert from_text == typed
    assert not math.isnan(float(cells[3]))


def test_probabilities_of_a_regressor_are_refused(app_module: ModuleType) -> None:
    regressor = app_module.model.manifest.model_copy(update={"task": "regression"})
    model = type(app_module.model)(manifest=regressor, engine=app_module.model.engine)

    with pytest.raises(NoProbabilitiesError, match="is a regressor"):
        Scorer(model, probabilities=True)


# A CSV cell with the JSON value it stands for, by the documented rule spelt independently here:
# empty is null, a plain ASCII decimal is its number, anything else stays text.
PLAIN_DECIMAL = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
CELL = st.one_of(
    GOOD_NUMBER.map(lambda pair: pair[1]),
    st.integers(-1000, 1000).map(str),
    st.sampled_from(["", "1e39", "-1e999", "3.4028235e38", "3.4028234e38", "6.1", ".5", "5."]),
    BAD_TEXT,
    # The characters of a decimal in any order: float() takes some that are no plain decimal.
    st.text(alphabet="0123456789+-.eE", max_size=6),
)


def cell_value(cell: str) -> Any:
    if cell == "":
        return None
    return float(cell) if PLAIN_DECIMAL.fullmatch(cell) else cell


@st.composite
def tables(draw: st.DrawFn) -> tuple[list[str], list[list[str]]]:
    """A CSV header (the features in any order, maybe an id and another column, rarely a feature
    missing) and rows, some with more or fewer cells than the header."""
    header = draw(st.permutations([*NAMES, "id", "comment"]))
    header = [name for name in header if draw(st.integers(0, 12)) > 0 or name not in NAMES[:1]]
    rows = []
    for index in range(draw(st.integers(0, 12))):
        row = [f"r{index}" if name == "id" else draw(CELL) for name in header]
        width = draw(st.sampled_from([len(row)] * 8 + [len(row) - 1, len(row) + 2]))
        rows.append(([*row, "x", "y"])[: max(width, 0)])
    return header, rows


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(table=tables(), first=st.integers(1, 10**6), probabilities=st.booleans())
def test_a_csv_chunk_is_scored_row_by_row_as_the_api_answers_each_row(
    app_module: ModuleType, table: tuple[list[str], list[list[str]]], first: int, probabilities: bool
) -> None:
    header, rows = table
    scorer = Scorer(app_module.model, probabilities=probabilities)

    scored = scorer.score_table(header, rows, first_row=first)

    # The same rows as csv.DictReader gives them, through the records' path.
    assert scored == scorer.score([as_record(header, row) for row in rows], first_row=first, text=True)
    key = "id" if "id" in header else ROW
    predictions = {item[key]: item for item in scored.predictions}
    errors = {item[ROW]: item for item in scored.errors}
    assert len(predictions) + len(errors) == len(rows)
    query = {"probabilities": "true"} if probabilities else None
    for number, row in enumerate(rows, start=first):
        if len(row) != len(header):
            assert errors[number][ERROR] == (
                f"invalid row: expected {len(header)} cells, as the header names, got {len(row)}"
            )
            continue
        cells = dict(zip(header, row, strict=True))
        status, answer = api(app_module, {name: cell_value(cells[name]) for name in NAMES if name in cells}, query)
        key_value = cells["id"] if key == "id" else number
        if status == 200:
            expected = {key: key_value, PREDICTION: answer["prediction"], **(answer.get("probabilities") or {})}
            assert predictions[key_value] == expected
        else:
            assert status == 422
            assert errors[number] == {ROW: number, **({key: key_value} if key == "id" else {}), ERROR: answer["error"]}


def test_a_chunk_of_good_rows_and_one_bad_row_keeps_the_input_order(app_module: ModuleType) -> None:
    header = ["id", *NAMES]
    rows = [[f"r{index}", "6.1", "2.8", "4.7", "1.2"] for index in range(50)]
    rows[17][2] = "n/a"
    scorer = Scorer(app_module.model)

    scored = scorer.score_table(header, rows)

    assert [item["id"] for item in scored.predictions] == [f"r{index}" for index in range(50) if index != 17]
    assert {item[PREDICTION] for item in scored.predictions} == {1}
    [error] = scored.errors
    assert error[ROW] == 18
    assert error["id"] == "r17"
    assert 'Input should be a valid number (got "n/a")' in error[ERROR]


def test_float_reads_exactly_the_plain_decimals_among_strings_of_their_characters() -> None:
    # The fast path's premise: over these characters, float() succeeds where the text rule reads a number.
    alphabet = "0123456789+-.eE"
    strings = ["".join(chars) for length in range(1, 5) for chars in itertools.product(alphabet, repeat=length)]

    def reads(text: str) -> bool:
        try:
            float(text)
        except ValueError:
            return False
        return True

    assert all(DECIMAL_CHARACTERS.fullmatch(text) for text in strings)
    assert [text for text in strings if reads(text) != bool(PLAIN_DECIMAL.fullmatch(text))] == []


NAMES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
GOOD = dict(zip(NAMES, [6.1, 2.8, 4.7, 1.2], strict=True))
IDS = st.one_of(st.integers(), st.text(max_size=8), st.none(), st.lists(st.integers(), max_size=2))


@settings(max_examples=examples(0.8), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ids=st.lists(st.tuples(st.booleans(), IDS), max_size=12), first=st.integers(1, 1000))
def test_with_an_id_column_every_line_is_keyed_by_its_own_id_or_is_an_error(
    app_module: ModuleType, ids: list[tuple[bool, Any]], first: int
) -> None:
    records = [{"key": value, **GOOD} if has_id else dict(GOOD) for has_id, value in ids]

    scored = Scorer(app_module.model, id_column="key").score(records, first_row=first)

    assert [line["key"] for line in scored.predictions] == [value for has_id, value in ids if has_id]
    missing = [first + index for index, (has_id, _) in enumerate(ids) if not has_id]
    assert [line[ROW] for line in scored.errors] == missing
    assert all(line[ERROR] == 'no "key": every row of a file with ids needs its id' for line in scored.errors)


def test_without_an_id_column_every_line_is_keyed_by_its_row_number_even_if_it_has_an_id(
    app_module: ModuleType,
) -> None:
    records = [{"id": "a", **GOOD}, dict(GOOD), {"id": 7, **GOOD}]

    scored = Scorer(app_module.model, id_column=None).score(records, first_row=10)

    assert scored.predictions == [{ROW: 10, PREDICTION: 1}, {ROW: 11, PREDICTION: 1}, {ROW: 12, PREDICTION: 1}]


@pytest.mark.parametrize("column", [ROW, PREDICTION, ERROR])
def test_an_id_column_the_output_has_already_is_refused(app_module: ModuleType, column: str) -> None:
    with pytest.raises(InvalidRequestError, match=f'id column "{column}" is a column the output has already'):
        Scorer(app_module.model, id_column=column)


def test_an_id_column_named_as_a_class_is_refused_with_probabilities(app_module: ModuleType) -> None:
    Scorer(app_module.model, id_column="setosa")  # no probability columns: no clash

    with pytest.raises(InvalidRequestError, match='the class name "setosa" would be a second column of that name'):
        Scorer(app_module.model, id_column="setosa", probabilities=True)

"""local/score.py's streaming and atomic writing, with a stand-in scorer (no package needed)."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from local import score
from local.score import (
    Progress,
    RecordWriter,
    ScoreError,
    atomic_file,
    check_columns,
    check_encoding,
    check_paths,
    chunks,
    errors_path,
    key_column,
    score_file,
)
from serving.scoring import Scored
from tests.shared import examples


class Halves:
    """Predicts a record whose "x" is even, rejects the rest; remembers the chunk sizes it saw."""

    def __init__(self) -> None:
        self.sizes: list[int] = []

    def __call__(self, header: list[str] | None, chunk: list[Any], first: int) -> Scored:
        self.sizes.append(len(chunk))
        # A CSV row is a list of cells under the header; a JSON Lines record a dict.
        records = chunk if header is None else [dict(zip(header, row, strict=True)) for row in chunk]
        numbered = list(enumerate(records, start=first))
        return Scored(
            [{"row": row, "prediction": record["x"]} for row, record in numbered if int(record["x"]) % 2 == 0],
            [{"row": row, "error": "odd"} for row, record in numbered if int(record["x"]) % 2],
        )


@settings(max_examples=examples(2 / 3), deadline=None)
@given(values=st.lists(st.integers(0, 99), max_size=50), size=st.integers(1, 7))
def test_chunks_keep_every_record_in_order_and_bounded(values: list[int], size: int) -> None:
    parts = list(chunks(iter(values), size))

    assert [value for part in parts for value in part] == values
    assert all(0 < len(part) <= size for part in parts)


@pytest.mark.parametrize(("source_kind", "output_kind"), [(".csv", ".csv"), (".jsonl", ".jsonl"), (".csv", ".jsonl")])
def test_every_row_lands_once_in_the_output_or_the_errors(
    tmp_path: Path, source_kind: str, output_kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("local.score.CHUNK_ROWS", 3)
    values = [7, 2, 4, 9, 0, 11, 6, 8]
    source = tmp_path / f"in{source_kind}"
    lines = [json.dumps({"x": value}) for value in values] if source_kind == ".jsonl" else ["x", *map(str, values)]
    source.write_text("\n".join(lines) + "\n")
    output = tmp_path / f"out{output_kind}"
    scorer = Halves()
    reports: list[str] = []

    counts = score_file(scorer, source, output, ["row", "prediction"], ["row", "error"], reports.append)

    def read(path: Path) -> list[dict[str, Any]]:
        if output_kind == ".csv":
            return list(csv.DictReader(path.read_text().splitlines()))
        return [json.loads(line) for line in path.read_text().splitlines()]

    good, bad = read(output), read(errors_path(output))
    assert counts == (len(good), len(bad))
    assert sorted(int(item["row"]) for item in good + bad) == list(range(1, len(values) + 1))
    assert [int(item["prediction"]) for item in good] == [value for value in values if value % 2 == 0]
    assert scorer.sizes == [3, 3, 2]
    assert f"{len(good)} predicted" in reports[-1]
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(
        [source.name, output.name, errors_path(output).name]
    )


def test_a_failed_run_leaves_neither_file(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_text("x\n2\n3\n")
    output = tmp_path / "out.csv"

    def fails(header: list[str] | None, chunk: list[Any], first: int) -> Scored:
        raise RuntimeError("the engine broke")

    with pytest.raises(RuntimeError, match="the engine broke"):
        score_file(fails, source, output, ["row"], ["row"], lambda _: None)

    assert [path.name for path in tmp_path.iterdir()] == ["in.csv"]


def test_atomic_file_replaces_an_old_result_only_when_complete(tmp_path: Path) -> None:
    path = tmp_path / "result.csv"
    path.write_text("old\n")

    def interrupted() -> None:
        with atomic_file(path) as stream:
            stream.write("half")
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        interrupted()
    assert path.read_text() == "old\n"

    with atomic_file(path) as stream:
        stream.write("new\n")
    assert path.read_text() == "new\n"


def test_only_csv_and_jsonl_are_accepted(tmp_path: Path) -> None:
    with pytest.raises(ScoreError, match=r"expected a \.csv or \.jsonl file"):
        score_file(Halves(), tmp_path / "in.parquet", tmp_path / "out.csv", [], [], lambda _: None)


@given(
    columns=st.lists(st.sampled_from(["row", "id", "prediction", "error"]), min_size=1, max_size=4, unique=True),
    records=st.lists(
        st.dictionaries(st.sampled_from(["row", "id", "prediction", "error", "x"]), st.integers() | st.text()),
        max_size=6,
    ),
)
def test_csv_records_are_written_as_dict_writer_writes_them(columns: list[str], records: list[dict[str, Any]]) -> None:
    ours, theirs = io.StringIO(), io.StringIO()
    RecordWriter(ours, ".csv", columns).write(records)
    reference = csv.DictWriter(theirs, columns, extrasaction="ignore")
    reference.writeheader()
    reference.writerows(records)

    assert ours.getvalue() == theirs.getvalue()


def stand_in(header: list[str] | None, chunk: list[Any], first: int) -> Scored:
    """Predicts a record whose "x" is an even number, rejects the rest, numbered from `first`."""
    records = chunk if header is None else [dict(zip(header, row, strict=False)) for row in chunk]
    predictions, errors = [], []
    for row, record in enumerate(records, start=first):
        value = record.get("x") if isinstance(record, dict) else None
        if isinstance(value, (int, str)) and str(value).isdigit() and int(value) % 2 == 0:
            predictions.append({"row": row, "prediction": value})
        else:
            errors.append({"row": row, "error": "odd"})
    return Scored(predictions, errors)


CSV_LINE = st.one_of(
    st.integers(0, 99).map(str),
    st.just("x" * 140_000),  # a cell over the csv module's field limit
    st.just(""),  # a blank line: not a row
)
JSON_LINE = st.one_of(
    st.integers(0, 99).map(lambda value: json.dumps({"x": value})),
    st.just('{"x": ' + "9" * 5000 + "}"),  # an integer over Python's 4,300-digit limit
    st.just("[" * 100_000),  # nested deeper than the parser goes
    st.just("{not json"),
    st.just("   "),
    st.just('"a string"'),
)


def rows_of(lines: list[str], kind: str) -> int:
    """The rows a reader sees: non-blank lines after a CSV's header."""
    return sum(bool(line.strip()) for line in lines) if kind == ".jsonl" else sum(line != "" for line in lines)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from([".csv", ".jsonl"]), data=st.data(), chunk=st.integers(1, 6))
def test_every_row_is_in_exactly_one_file_once_whatever_its_lines(
    tmp_path_factory: pytest.TempPathFactory, kind: str, data: st.DataObject, chunk: int
) -> None:
    folder = tmp_path_factory.mktemp("score")
    lines = data.draw(st.lists(CSV_LINE if kind == ".csv" else JSON_LINE, max_size=15))
    source = folder / f"in{kind}"
    source.write_text("\n".join((["x"] if kind == ".csv" else []) + lines) + "\n")
    output = folder / f"out{kind}"

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(score, "CHUNK_ROWS", chunk)
        predicted, rejected = score.score_file(
            stand_in, source, output, ["row", "prediction"], ["row", "error"], lambda text: None
        )

    def read(path: Path) -> list[dict[str, Any]]:
        text = path.read_text()
        return list(csv.DictReader(io.StringIO(text))) if kind == ".csv" else [json.loads(x) for x in text.splitlines()]

    good, bad = read(output), read(errors_path(output))
    numbers = Counter(int(record["row"]) for record in good + bad)
    assert sorted(numbers) == list(range(1, rows_of(lines, kind) + 1))
    assert set(numbers.values()) <= {1}
    assert (predicted, rejected) == (len(good), len(bad))
    assert all(len(record["error"]) < 300 for record in bad)
    assert all(record["error"].startswith("unreadable line ") for record in bad if record["error"] != "odd")


def test_an_unreadable_line_is_an_error_row_with_its_line_number(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_text("x\n2\n" + "y" * 140_000 + "\n4\n")
    output = tmp_path / "out.csv"

    score.score_file(stand_in, source, output, ["row", "prediction"], ["row", "error"], lambda text: None)

    assert output.read_text().splitlines() == ["row,prediction", "1,2", "3,4"]
    assert errors_path(output).read_text().splitlines() == [
        "row,error",
        "2,unreadable line 3: field larger than field limit (131072)",
    ]


def test_a_byte_order_mark_is_read_as_one(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_bytes(b"\xef\xbb\xbfid,x\nc-1,2\n")

    assert score.header(source) == ["id", "x"]
    assert key_column(score.header(source), None) == "id"


@pytest.mark.parametrize(
    ("columns", "id_column", "key"), [(["id", "x"], None, "id"), (["x"], None, None), (["row", "x"], "row", "row")]
)
def test_the_key_is_the_id_column_where_the_input_has_it_else_the_row_number(
    columns: list[str], id_column: str | None, key: str | None
) -> None:
    assert key_column(columns, id_column) == key


def test_an_id_column_named_but_absent_is_refused() -> None:
    with pytest.raises(
        ScoreError, match=r"--id-column 'customer' is not a column of the input; its columns are \['x'\]"
    ):
        key_column(["x"], "customer")


def test_a_header_naming_none_of_the_features_is_refused_naming_the_model(tmp_path: Path) -> None:
    with pytest.raises(ScoreError) as refused:
        check_columns(tmp_path / "in.csv", ["a", "b"], "diabetes", ["age", "bmi"])

    assert str(refused.value) == (
        f"{tmp_path / 'in.csv'}: its header names none of the features of the model diabetes (age, bmi); "
        "its columns are ['a', 'b']"
    )
    check_columns(tmp_path / "in.csv", ["a", "bmi"], "diabetes", ["age", "bmi"])


@pytest.mark.parametrize(
    ("output_name", "message"),
    [
        ("in.csv", "is the input"),
        ("in.errors.csv", None),
        ("folder", "is a folder"),
        ("missing/out.csv", "no such folder for the output"),
    ],
)
def test_an_output_that_would_replace_the_input_or_cannot_be_written_is_refused_leaving_nothing(
    tmp_path: Path, output_name: str, message: str | None
) -> None:
    source = tmp_path / "in.csv"
    source.write_text("x\n2\n")
    (tmp_path / "folder.csv").mkdir()
    before = sorted(tmp_path.rglob("*"))
    output = tmp_path / (output_name if output_name.endswith(".csv") else f"{output_name}.csv")
    if output_name == "in.errors.csv":  # OUTPUT's errors file would be the input
        source = tmp_path / "out.errors.csv"
        source.write_text("x\n2\n")
        before = sorted(tmp_path.rglob("*"))
        output = tmp_path / "out.csv"
        message = "out.errors.csv is the input"

    with pytest.raises(ScoreError, match=message):
        check_paths(source, output)

    assert sorted(tmp_path.rglob("*")) == before


def test_the_same_file_by_another_path_is_the_input(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_text("x\n2\n")
    (tmp_path / "sub").mkdir()

    with pytest.raises(ScoreError, match="is the input"):
        check_paths(source, tmp_path / "sub" / ".." / "in.csv")


def test_an_input_that_is_not_utf8_is_refused_with_its_line(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_bytes(b"x\n" + b"2\n" * 30_000 + b"\xff\n")

    with pytest.raises(ScoreError, match=r"not UTF-8 \(line 30,002: invalid start byte\)"):
        check_encoding(source)


def test_progress_for_a_log_is_whole_lines_and_for_a_terminal_one_redrawn_line(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = iter(range(1000))  # a second per call
    monkeypatch.setattr(score.time, "monotonic", lambda: float(next(clock)))
    for terminal in (False, True):
        written: list[str] = []
        shown = Progress(written.append, terminal)
        for rows in range(0, 100, 10):
            shown.update(rows)
        shown.done("scored")
        text = "".join(written)
        if terminal:
            assert text.count("\r") == len(written)
            assert text.endswith("scored\n")
        else:
            assert "\r" not in text
            assert all(line.endswith("\n") for line in written)
            assert 2 <= len(written) < 10

"""local/score.py's streaming and atomic writing, with a stand-in scorer (no package needed)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from local.score import RecordWriter, ScoreError, atomic_file, chunks, errors_path, score_file
from serving.scoring import Scored


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


@settings(max_examples=20, deadline=None)
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


@settings(max_examples=50, deadline=None)
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

"""Score a CSV or JSON Lines file with the built package, as `make score` runs it:

    python local/score.py rows.csv predictions.csv [--id-column id] [--probabilities]

The package's own scoring core (serving/scoring.py: the API's validation and engine) runs in a
process whose import path holds only the package and the standard library, like
local/lambda_local.py's. The input is read and scored in chunks, so memory stays flat however
large the file is. Predictions go to OUTPUT and bad rows to OUTPUT.errors.csv (or
.errors.jsonl), each written to a temporary file beside it and renamed only once complete: a
failed or interrupted run leaves no half-written file under either name.
Standard library only: nothing from the caller's environment can leak into the package.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import operator
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

sys.path.append(str(Path(__file__).resolve().parent))
import lambda_local  # beside this script: imported by path, as in the isolated process

PROGRAM = "score.py"
CHUNK_ROWS = 10_000
PROGRESS_AFTER_S = 1.0
FORMATS = (".csv", ".jsonl")


class ScoreError(Exception):
    """A usage or input problem, reported as one line."""


def file_format(path: Path) -> str:
    if path.suffix not in FORMATS:
        raise ScoreError(f"{path}: expected a .csv or .jsonl file")
    return path.suffix


def errors_path(output: Path) -> Path:
    return output.with_name(f"{output.stem}.errors{output.suffix}")


def read_records(stream: IO[str], kind: str) -> tuple[list[str] | None, Iterator[Any]]:
    """A CSV's header and its rows as lists of strings (blank lines skipped, as csv.DictReader
    does); for JSON Lines no header and the values as parsed, a line that is not JSON as its
    text (rejected as not an object)."""
    if kind == ".csv":
        reader = csv.reader(stream)
        return next(reader, []), filter(None, reader)
    return None, _json_lines(stream)


def _json_lines(stream: IO[str]) -> Iterator[Any]:
    for line in stream:
        if line.strip():
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                yield line.rstrip("\n")


def chunks(records: Iterable[Any], size: int) -> Iterator[list[Any]]:
    records = iter(records)
    while chunk := list(itertools.islice(records, size)):
        yield chunk


class RecordWriter:
    """Writes dicts as CSV (`columns`, a record's missing ones empty, others ignored) or JSON Lines."""

    def __init__(self, stream: IO[str], kind: str, columns: list[str]) -> None:
        self.stream = stream
        self.columns = columns
        # A record's cells in one C call: itemgetter gives a tuple from two names on, the value for one.
        self.cells: Callable[[dict[str, Any]], Any] = (
            operator.itemgetter(*columns) if len(columns) > 1 else lambda record: (record[columns[0]],)
        )
        self.csv = csv.writer(stream) if kind == ".csv" else None
        if self.csv is not None:
            self.csv.writerow(columns)

    def write(self, records: Iterable[dict[str, Any]]) -> None:
        if self.csv is not None:
            try:
                rows = list(map(self.cells, records))
            except KeyError:  # a record without every column (a JSON Lines row keyed by its number)
                rows = [[record.get(column) for column in self.columns] for record in records]  # None: empty
            self.csv.writerows(rows)
        else:
            self.stream.writelines(json.dumps(record) + "\n" for record in records)


@contextmanager
def atomic_file(path: Path) -> Iterator[IO[str]]:
    """A text file that appears as `path` only when the block completes; else it is removed."""
    handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 - renamed or removed below, not just closed
        "w", dir=path.parent, prefix=f".{path.name}.", suffix=".partial", delete=False, newline="", encoding="utf-8"
    )
    try:
        with handle:
            yield handle.file  # the file itself: the wrapper's methods add a call to every write
        # mkstemp makes the file private (0600); the result gets the mode any new file would.
        umask = os.umask(0)
        os.umask(umask)
        Path(handle.name).chmod(0o666 & ~umask)
        Path(handle.name).replace(path)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise


def progress(rows: int, started: float) -> str:
    elapsed = time.monotonic() - started
    return f"{rows:,} rows, {rows / max(elapsed, 1e-9):,.0f} rows/s, {elapsed:.1f} s"


def score_file(
    score: Callable[[list[str] | None, list[Any], int], Any],
    source: Path,
    output: Path,
    columns: list[str],
    error_columns: list[str],
    report: Callable[[str], object],
) -> tuple[int, int]:
    """Stream `source` through `score` (a CSV's header or None, a chunk of rows and its first row
    number -> serving.scoring.Scored) into `output` and its errors file; returns (predicted, rejected)."""
    kind = file_format(source)
    out_kind = file_format(output)
    predicted = rejected = 0
    started = time.monotonic()
    with (
        source.open(newline="", encoding="utf-8") as stream,
        atomic_file(output) as out,
        atomic_file(errors_path(output)) as bad,
    ):
        writer, error_writer = RecordWriter(out, out_kind, columns), RecordWriter(bad, out_kind, error_columns)
        names, records = read_records(stream, kind)
        for chunk in chunks(records, CHUNK_ROWS):
            scored = score(names, chunk, predicted + rejected + 1)
            writer.write(scored.predictions)
            error_writer.write(scored.errors)
            predicted += len(scored.predictions)
            rejected += len(scored.errors)
            if time.monotonic() - started > PROGRESS_AFTER_S:
                report(f"\r{progress(predicted + rejected, started)}")
    report(
        f"\rscored {progress(predicted + rejected, started)}: "
        f"{predicted:,} predicted -> {output}, {rejected:,} rejected -> {errors_path(output)}\n"
    )
    return predicted, rejected


def header(source: Path) -> list[str]:
    """The input's column names: a CSV's header, or the first JSON Lines object's keys."""
    with source.open(newline="", encoding="utf-8") as stream:
        names, records = read_records(stream, file_format(source))
        if names is not None:
            return names
        first = next(records, None)
    return [name for name in first if isinstance(name, str)] if isinstance(first, dict) else []


def run(package: Path, source: Path, output: Path, id_column: str, probabilities: bool) -> int:
    file_format(output)
    if not source.is_file():
        raise ScoreError(f"{source}: no such file")
    lambda_local.load_handler(package)
    model = sys.modules["app"].model  # loaded by the package's entry point, as the API's
    from serving.errors import ServiceError
    from serving.scoring import ERROR, PREDICTION, ROW, Scorer

    try:
        scorer = Scorer(model, id_column=id_column, probabilities=probabilities)
    except ServiceError as error:
        raise ScoreError(error.message) from None
    key = id_column if id_column in header(source) else ROW
    classes = list(model.manifest.class_names) if probabilities else []
    error_columns = [ROW] + ([key] if key != ROW else []) + [ERROR]

    def score(names: list[str] | None, chunk: list[Any], first: int) -> Any:
        return scorer.score(chunk, first_row=first) if names is None else scorer.score_table(names, chunk, first)

    _, rejected = score_file(
        score,
        source,
        output,
        [key, PREDICTION, *classes],
        error_columns,
        sys.stderr.write,
    )
    return rejected


def isolate() -> None:
    """Re-run this script isolated from site-packages and without writing bytecode, once this
    Python is found to be the template's runtime (template.yaml is read here, before isolating)."""
    if not (sys.flags.no_site and sys.flags.isolated and sys.flags.dont_write_bytecode):
        settings = lambda_local.function_settings()
        lambda_local.check_interpreter(settings.runtime, *sys.version_info[:2], sys.executable)
        os.execv(sys.executable, [sys.executable, *lambda_local.ISOLATED_PYTHON_FLAGS, __file__, *sys.argv[1:]])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input", type=Path, help="rows to score: .csv with a header, or .jsonl")
    parser.add_argument("output", type=Path, help="predictions: .csv or .jsonl")
    parser.add_argument("--package", type=Path, default=lambda_local.DEFAULT_PACKAGE, help="built package directory")
    parser.add_argument("--id-column", default="id", help="copied to the output in place of the row number")
    parser.add_argument("--probabilities", action="store_true", help="one column per class")
    args = parser.parse_args()
    try:
        isolate()
        run(args.package.resolve(), args.input, args.output, args.id_column, args.probabilities)
    except (ScoreError, lambda_local.LocalRunnerError) as error:
        raise SystemExit(f"{PROGRAM}: {error}") from None


if __name__ == "__main__":
    main()

"""Score a CSV or JSON Lines file with the built package, as `make score` runs it:

    python local/score.py rows.csv predictions.csv [--id-column id] [--probabilities]

The package's own scoring core (serving/scoring.py: the API's validation and engine) runs in a
process whose import path holds only the package and the standard library, like the child
of local/lambda_local.py. The input is read and scored in chunks, so memory stays flat however
large the file is. Predictions go to OUTPUT and bad rows to OUTPUT.errors.csv (or
.errors.jsonl), each written to a temporary file beside it and renamed only once complete: a
failed or interrupted run leaves no half-written file under either name.

Every input row is in exactly one of the two files, once: a line that cannot be read (a CSV
cell over the csv module's field limit, JSON that Python refuses to parse) is an error row with
its line number. What would make the whole run wrong is refused in one line before any work,
leaving nothing behind: an output that is the input (or whose errors file is), an output
folder that does not exist, an output that is a folder, an input that is not UTF-8 (a UTF-8
byte-order mark is read as one), a header naming none of the model's features.
Standard library only: nothing from the caller's environment can leak into the package.
"""

from __future__ import annotations

import argparse
import codecs
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
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

sys.path.append(str(Path(__file__).resolve().parent))
import lambda_local  # beside this script: imported by path, as in the isolated process
import lambda_runtime

PROGRAM = "score.py"
CHUNK_ROWS = 10_000
PROGRESS_AFTER_S = 1.0
# Without a terminal (a saved log), one progress line per this many seconds, each a line of its own.
LOG_PROGRESS_EVERY_S = 10.0
FORMATS = (".csv", ".jsonl")
# utf-8-sig reads a byte-order mark (Excel's "CSV UTF-8") as one, and plain UTF-8 as it is.
ENCODING = "utf-8-sig"
DEFAULT_ID_COLUMN = "id"
MAX_REASON = 200
READ_BYTES = 1 << 20


class ScoreError(Exception):
    """A usage or input problem, reported as one line."""


def file_format(path: Path) -> str:
    if path.suffix not in FORMATS:
        raise ScoreError(f"{path}: expected a .csv or .jsonl file")
    return path.suffix


def errors_path(output: Path) -> Path:
    return output.with_name(f"{output.stem}.errors{output.suffix}")


def _same_file(one: Path, other: Path) -> bool:
    return one.resolve() == other.resolve() or (one.exists() and other.exists() and one.samefile(other))


def check_paths(source: Path, output: Path) -> None:
    """Refuse, before any work, a run that would write over its input or cannot write its files."""
    file_format(source)
    file_format(output)
    if not source.is_file():
        raise ScoreError(f"{source}: no such file")
    for written in (output, errors_path(output)):
        if _same_file(written, source):
            raise ScoreError(f"{written} is the input {source}: choose an output that does not replace it")
        if written.is_dir():
            raise ScoreError(f"{written} is a folder: give a file name for the output")
    if not output.parent.is_dir():
        raise ScoreError(f"{output.parent}: no such folder for the output")


def check_encoding(source: Path) -> None:
    """Refuse an input that is not UTF-8, naming where it stops being, before any row is scored."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    line = 1
    with source.open("rb") as stream:
        while block := stream.read(READ_BYTES):
            try:
                decoder.decode(block)
            except UnicodeDecodeError as error:
                line += block.count(b"\n", 0, error.start)
                raise ScoreError(f"{source}: not UTF-8 (line {line:,}: {error.reason}); save it as UTF-8") from None
            line += block.count(b"\n")
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError as error:
            raise ScoreError(f"{source}: not UTF-8 (it ends inside a character: {error.reason})") from None


@dataclass(frozen=True)
class Unreadable:
    """A line of the input that cannot be read as a row: it becomes an error row."""

    line: int
    reason: str

    @property
    def message(self) -> str:
        reason = self.reason if len(self.reason) <= MAX_REASON else self.reason[: MAX_REASON - 3] + "..."
        return f"unreadable line {self.line:,}: {reason}"


def read_records(stream: IO[str], kind: str) -> tuple[list[str] | None, Iterator[Any]]:
    """A CSV's header and its rows as lists of strings (blank lines skipped, as csv.DictReader
    does); for JSON Lines no header and the values as parsed. A line that cannot be read is an
    Unreadable in its place."""
    if kind == ".csv":
        reader = csv.reader(stream)
        try:
            names = next(reader, [])
        except csv.Error as error:
            raise ScoreError(f"the header line cannot be read: {error}") from None
        return names, _csv_rows(reader)
    return None, _json_lines(stream)


def _csv_rows(reader: Any) -> Iterator[Any]:
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as error:  # the reader goes on at the next line
            yield Unreadable(reader.line_num, str(error))
            continue
        if row:
            yield row


def _json_lines(stream: IO[str]) -> Iterator[Any]:
    for number, line in enumerate(stream, start=1):
        if line.strip():
            try:
                yield json.loads(line)
            except (ValueError, RecursionError) as error:  # not JSON, an integer over Python's digit limit, too deep
                yield Unreadable(number, f"not JSON: {type(error).__name__}: {error}")


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


class Progress:
    """Progress for a terminal (one line redrawn with \\r) or for a log (a whole line now and then)."""

    def __init__(self, report: Callable[[str], object], terminal: bool) -> None:
        self.report = report
        self.terminal = terminal
        self.started = time.monotonic()
        self.last = self.started
        self.drawn = False

    def update(self, rows: int) -> None:
        now = time.monotonic()
        if now - self.started < PROGRESS_AFTER_S or (not self.terminal and now - self.last < LOG_PROGRESS_EVERY_S):
            return
        self.last = now
        self.drawn = True
        self.report(f"\r{progress(rows, self.started)}" if self.terminal else f"{progress(rows, self.started)}\n")

    def done(self, text: str) -> None:
        self.report(f"{chr(13) if self.terminal and self.drawn else ''}{text}\n")


def _score_chunk(
    score: Callable[[list[str] | None, list[Any], int], Any], names: list[str] | None, chunk: list[Any], first: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A chunk's predictions and errors in input order; its unreadable lines are error rows, the
    readable runs between them scored with their own row numbers."""
    if not any(type(record) is Unreadable for record in chunk):
        scored = score(names, chunk, first)
        return scored.predictions, scored.errors
    predictions: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    run: list[Any] = []
    for number, record in enumerate([*chunk, None], start=first):
        if record is not None and type(record) is not Unreadable:
            run.append(record)
            continue
        if run:
            scored = score(names, run, number - len(run))
            predictions += scored.predictions
            errors += scored.errors
            run = []
        if record is not None:
            errors.append({"row": number, "error": record.message})
    return predictions, errors


def score_file(
    score: Callable[[list[str] | None, list[Any], int], Any],
    source: Path,
    output: Path,
    columns: list[str],
    error_columns: list[str],
    report: Callable[[str], object],
    terminal: bool = False,
) -> tuple[int, int]:
    """Stream `source` through `score` (a CSV's header or None, a chunk of rows and its first row
    number -> serving.scoring.Scored) into `output` and its errors file; returns (predicted, rejected)."""
    kind = file_format(source)
    out_kind = file_format(output)
    predicted = rejected = rows = 0
    shown = Progress(report, terminal)
    with (
        source.open(newline="", encoding=ENCODING) as stream,
        atomic_file(output) as out,
        atomic_file(errors_path(output)) as bad,
    ):
        writer, error_writer = RecordWriter(out, out_kind, columns), RecordWriter(bad, out_kind, error_columns)
        names, records = read_records(stream, kind)
        for chunk in chunks(records, CHUNK_ROWS):
            good, bad_rows = _score_chunk(score, names, chunk, rows + 1)
            rows += len(chunk)
            writer.write(good)
            error_writer.write(bad_rows)
            predicted += len(good)
            rejected += len(bad_rows)
            if predicted + rejected != rows:  # every row once: never written short or twice unnoticed
                raise ScoreError(f"internal error: {rows:,} rows read, {predicted + rejected:,} written")
            shown.update(rows)
    shown.done(
        f"scored {progress(rows, shown.started)}: "
        f"{predicted:,} predicted -> {output}, {rejected:,} rejected -> {errors_path(output)}"
    )
    return predicted, rejected


def header(source: Path) -> list[str]:
    """The input's column names: a CSV's header, or the first JSON Lines object's keys."""
    with source.open(newline="", encoding=ENCODING) as stream:
        names, records = read_records(stream, file_format(source))
        if names is not None:
            return names
        first = next(records, None)
    return [name for name in first if isinstance(name, str)] if isinstance(first, dict) else []


def key_column(columns: list[str], id_column: str | None) -> str | None:
    """What keys every output line: the id column if the input has it (`id` unless named), else
    None, the row number. A named id column must be there."""
    if id_column is None:
        return DEFAULT_ID_COLUMN if DEFAULT_ID_COLUMN in columns else None
    if id_column not in columns:
        raise ScoreError(f"--id-column {id_column!r} is not a column of the input; its columns are {columns[:20]}")
    return id_column


def check_columns(source: Path, columns: list[str], model: str, features: list[str]) -> None:
    """Refuse an input whose header (or first JSON Lines object) names none of the model's
    features: every row would be rejected, most likely the wrong file or the wrong model."""
    if columns and not set(columns) & set(features):
        where = "header" if source.suffix == ".csv" else "first record"
        raise ScoreError(
            f"{source}: its {where} names none of the features of the model {model} "
            f"({', '.join(features[:10])}); its columns are {columns[:10]}"
        )


def run(package: Path, source: Path, output: Path, id_column: str | None, probabilities: bool) -> int:
    check_paths(source, output)
    check_encoding(source)
    columns = header(source)
    key = key_column(columns, id_column)
    lambda_local.check_package(package)
    lambda_runtime.load_handler(package)
    model = sys.modules["app"].model  # loaded by the package's entry point, as the API's
    from serving.errors import ServiceError
    from serving.scoring import ERROR, PREDICTION, ROW, Scorer

    manifest = model.manifest
    check_columns(source, columns, manifest.name, manifest.feature_names)
    try:
        scorer = Scorer(model, id_column=key, probabilities=probabilities)
    except ServiceError as error:
        raise ScoreError(error.message) from None
    sys.stderr.write(f"scoring {source} with the model {manifest.name} {manifest.version}\n")
    key = key or ROW
    classes = list(manifest.class_names) if probabilities else []
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
        sys.stderr.isatty(),
    )
    return rejected


def isolate() -> None:
    """Re-run this script isolated from site-packages and without writing bytecode, once this
    Python is found to be the template's runtime (template.yaml is read here, before isolating)."""
    if not (sys.flags.no_site and sys.flags.isolated and sys.flags.dont_write_bytecode):
        lambda_local.function_settings()  # refuses another Python than the template's runtime
        os.execv(sys.executable, [sys.executable, *lambda_local.ISOLATED_PYTHON_FLAGS, __file__, *sys.argv[1:]])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input", type=Path, help="rows to score: .csv with a header, or .jsonl")
    parser.add_argument("output", type=Path, help="predictions: .csv or .jsonl")
    parser.add_argument("--package", type=Path, default=lambda_local.DEFAULT_PACKAGE, help="built package directory")
    parser.add_argument(
        "--id-column", help="copied to the output in place of the row number (default: id, where the input has it)"
    )
    parser.add_argument("--probabilities", action="store_true", help="one column per class")
    args = parser.parse_args()
    try:
        isolate()
        run(args.package.resolve(), args.input, args.output, args.id_column, args.probabilities)
    except (ScoreError, lambda_local.LocalRunnerError) as error:
        raise SystemExit(f"{PROGRAM}: {error}") from None


if __name__ == "__main__":
    main()

"""The BatchScoring state machine's own two steps (template.yaml): reading the request before the
Distributed Map, and turning the Map Run's result export into files after it.

`start` takes the execution input {"input": "s3://bucket/key.csv|.jsonl", "output":
"s3://bucket/prefix/"} (optionally "probabilities" and "id_column") and returns the state the Map
states read: bucket and key apart (ItemReader takes them separately), the input's format (its
InputType cannot come from a path, so a Choice picks the CSV or the JSON Lines Map state), the
options for every batch and the job's limits; or {"error": ...} for a request it refuses. It
reads the input's first record to decide, once for the whole file, what keys every output line:
the id column if that record has it (every row then must), else the row number.

`finish` reads what the Map's ResultWriter exported under the job's results prefix (manifests
listing SUCCEEDED_n, FAILED_n and PENDING_n files, each a JSON array of child executions with
their Input and Output as JSON text) and the input file itself, and writes under the output
prefix predictions and errors (in the input's format, in input order) and summary.json, last.
Every input row gets exactly one line: exports are read as untrusted (a file listed twice is
read once; a batch in several exports gets one verdict, a success winning over a failure; a
manifest, file or answer that cannot be read is noted, never fatal), and a row no readable
batch covers becomes an error line saying so. The job SUCCEEDED only when every row came from
a batch's verdict and the Map Run did not fail; summary.json's `problems` says what was wrong.

Standard library and boto3 only (the Lambda runtime provides boto3).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError

logger = logging.getLogger()
logger.setLevel(logging.INFO)

FORMATS = {".csv": "csv", ".jsonl": "jsonl"}
CONTENT_TYPES = {"csv": "text/csv", "jsonl": "application/x-ndjson"}
DEFAULT_ID_COLUMN = "id"
ROW = "row"
ERROR = "error"
PREDICTION = "prediction"
# Columns the job writes itself: an id column of one of these names would be overwritten.
OUTPUT_COLUMNS = (ROW, PREDICTION, ERROR)
# A row's 0-based input index, carried beside a record while the files are assembled.
INDEX = "\0index"
DAMAGED = "DAMAGED"
# When exports disagree on a batch, the verdict of the higher rank stands: a success wins.
VERDICT_RANK = {"SUCCEEDED": 3, "FAILED": 2, DAMAGED: 1, "PENDING": 0}
MAX_PROBLEMS = 20
# The first record of the input (a CSV header, a JSON Lines object) is read from this many bytes.
HEAD_BYTES = 1 << 20
REQUEST_KEYS = ("input", "output", "probabilities", "id_column")
RESULTS_FOLDER = "map-results"
SUMMARY_FILE = "summary.json"
MAX_SHOWN = 120
MAX_CAUSE = 500


class RequestError(ValueError):
    """The execution input is not a job this state machine runs."""


def _shown(value: Any) -> str:
    """A client value quoted back, bounded whatever its size."""
    text = json.dumps(value)
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 3] + "..."


def _s3_uri(request: dict[str, Any], name: str, bucket: str) -> tuple[str, str]:
    """(bucket, key or prefix) of the request's s3:// URI `name`, which must be in `bucket`."""
    uri = request.get(name)
    if not isinstance(uri, str) or not uri.startswith("s3://") or "/" not in uri[5:]:
        raise RequestError(f'{name}: expected an S3 URI "s3://{bucket}/...", got {_shown(uri)}')
    found, path = uri[5:].split("/", 1)
    if found != bucket:
        raise RequestError(f"{name}: this job may use the bucket {bucket} only, got {_shown(found)}")
    return found, path


@dataclass(frozen=True)
class Settings:
    """The deployment's parameters, as template.yaml passes them to the start step."""

    input_bucket: str
    output_bucket: str
    rows_per_batch: int
    max_concurrency: int
    tolerated_failure_percentage: float

    @classmethod
    def from_environment(cls) -> Settings:
        return cls(
            input_bucket=os.environ["INPUT_BUCKET"],
            output_bucket=os.environ["OUTPUT_BUCKET"],
            rows_per_batch=int(os.environ["ROWS_PER_BATCH"]),
            max_concurrency=int(os.environ["MAX_CONCURRENCY"]),
            tolerated_failure_percentage=float(os.environ["TOLERATED_FAILURE_PERCENTAGE"]),
        )


def read_request(request: Any, execution: str, settings: Settings) -> dict[str, Any]:
    """The state the Map states read, for the execution input `request`; RequestError if refused."""
    if not isinstance(request, dict):
        raise RequestError(
            f'expected a JSON object {{"input": "s3://...", "output": "s3://.../"}}, got {_shown(request)}'
        )
    unknown = sorted(set(request) - set(REQUEST_KEYS))
    if unknown:
        raise RequestError(f"unknown key {_shown(unknown[0])}: accepted keys are {', '.join(REQUEST_KEYS)}")
    input_bucket, key = _s3_uri(request, "input", settings.input_bucket)
    suffix = Path(key).suffix
    if suffix not in FORMATS:
        raise RequestError(f"input: expected a key ending in .csv or .jsonl, got {_shown(key)}")
    output_bucket, prefix = _s3_uri(request, "output", settings.output_bucket)
    if prefix and not prefix.endswith("/"):
        raise RequestError(f'output: expected a prefix ending in "/", got {_shown(prefix)}')
    probabilities = request.get("probabilities", False)
    if not isinstance(probabilities, bool):
        raise RequestError(f"probabilities: expected true or false, got {_shown(probabilities)}")
    id_column = request.get("id_column", DEFAULT_ID_COLUMN)
    if not isinstance(id_column, str) or not id_column:
        raise RequestError(f"id_column: expected a column name, got {_shown(id_column)}")
    if id_column in OUTPUT_COLUMNS:
        raise RequestError(
            f"id_column: {_shown(id_column)} is a column the job writes ({', '.join(OUTPUT_COLUMNS)}); "
            "name the column that holds your ids"
        )
    if input_bucket == output_bucket and key.startswith(prefix):
        raise RequestError(
            f"output: the job writes under s3://{output_bucket}/{_shown(prefix)[1:-1]}, which holds the input "
            f"{_shown(key)}; choose an output prefix that does not contain the input"
        )
    return {
        "input": {"bucket": input_bucket, "key": key},
        "output": {"bucket": output_bucket, "prefix": prefix},
        "format": FORMATS[suffix],
        "results_prefix": f"{prefix}{RESULTS_FOLDER}/{execution}",
        "batch": {"probabilities": probabilities, "id_column": id_column},
        "limits": {
            "rows_per_batch": settings.rows_per_batch,
            "max_concurrency": settings.max_concurrency,
            "tolerated_failure_percentage": settings.tolerated_failure_percentage,
        },
    }


def first_columns(head: bytes, kind: str) -> list[str]:
    """The column names of the input's first record (a CSV header, a JSON Lines object's keys)
    from the file's first bytes; none when it is not a record."""
    text = head.decode("utf-8-sig", errors="replace")
    if kind == "csv":
        return next(csv.reader(io.StringIO(text)), [])
    line = next((line for line in text.splitlines() if line.strip()), "")
    try:
        record = json.loads(line)
    except (ValueError, RecursionError):
        return []
    return list(record) if isinstance(record, dict) else []


def key_column(columns: list[str], request: dict[str, Any]) -> str | None:
    """The column every output line is keyed by: the id column if the input's first record has
    it (then every row must), else None, the row number for every row. An id column the request
    names explicitly must be there."""
    id_column: str = request.get("id_column", DEFAULT_ID_COLUMN)
    if id_column in columns:
        return id_column
    if "id_column" in request:
        raise RequestError(
            f"id_column: the input's first record has no column {_shown(id_column)}; its columns are {_shown(columns)}"
        )
    return None


def start(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """{"request": <execution input>, "execution": <execution name>} -> the job's state, or {"error": ...}."""
    request = event.get("request")
    try:
        state = read_request(request, str(event["execution"]), Settings.from_environment())
        assert isinstance(request, dict)
        source = state["input"]
        try:
            head = (
                boto3.client("s3")
                .get_object(Bucket=source["bucket"], Key=source["key"], Range=f"bytes=0-{HEAD_BYTES - 1}")["Body"]
                .read()
            )
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "error")
            raise RequestError(
                f"input: s3://{source['bucket']}/{_shown(source['key'])[1:-1]} cannot be read ({code})"
            ) from None
        state["batch"]["id_column"] = key_column(first_columns(head, state["format"]), request)
        return state
    except RequestError as error:
        return {"error": str(error)}


@dataclass(frozen=True)
class Verdict:
    """One batch's outcome, decided once however many exports hold it: its rows (0-based input
    indices, in input order), and either its answer (a success) or the message its rows get."""

    rows: tuple[int, ...]
    status: str
    predictions: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    message: str = ""
    failure: dict[str, Any] | None = None

    @property
    def rank(self) -> int:
        return VERDICT_RANK[self.status]


def _span(rows: tuple[int, ...]) -> str:
    return f"rows {rows[0] + 1}-{rows[-1] + 1}"


def _items(execution: dict[str, Any]) -> tuple[int, ...]:
    """The 0-based input indices of a child execution's batch; ValueError if its Input is unreadable."""
    items = json.loads(execution["Input"])["Items"]
    rows = tuple(int(item["index"]) for item in items)
    if not rows or len(set(rows)) != len(rows) or min(rows) < 0:
        raise ValueError("a batch without distinct row indices")
    return tuple(sorted(rows))


def _answer(output: Any, rows: tuple[int, ...]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A success's predictions and errors, each paired with its row; ValueError unless the answer
    holds every row of its batch exactly once (errors say their row; predictions are the rest, in order)."""
    answer = json.loads(output)
    predictions, errors = answer["predictions"], answer["errors"]
    if not isinstance(predictions, list) or not isinstance(errors, list):
        raise ValueError("predictions and errors are not lists")
    records = predictions + errors
    if not all(isinstance(record, dict) for record in records):
        raise ValueError("a record is not an object")
    error_rows = [record.get(ROW) for record in errors]
    rejected = set(error_rows)
    if len(rejected) != len(error_rows) or not rejected <= {row + 1 for row in rows}:
        raise ValueError("its errors name rows outside the batch or twice")
    if len(records) != len(rows):
        raise ValueError(f"{len(records)} records for {len(rows)} rows")
    predicted_rows = [row for row in rows if row + 1 not in rejected]
    if any(ROW in record and record[ROW] != row + 1 for record, row in zip(predictions, predicted_rows, strict=True)):
        raise ValueError("its predictions are not in its rows' order")
    return [dict(record, **{INDEX: row}) for record, row in zip(predictions, predicted_rows, strict=True)], [
        dict(record, **{INDEX: record[ROW] - 1}) for record in errors
    ]


def _verdict(status: str, execution: dict[str, Any], rows: tuple[int, ...]) -> Verdict:
    """What one export entry says of its batch; a success whose answer is unreadable is damaged."""
    if status == "SUCCEEDED":
        try:
            predictions, errors = _answer(execution["Output"], rows)
        except (KeyError, TypeError, ValueError, RecursionError) as damage:
            message = f"not scored: the result of its batch ({_span(rows)}) is damaged ({_cut(str(damage))})"
            return Verdict(rows, DAMAGED, message=message, failure=_failure(rows, DAMAGED, "damaged result", ""))
        return Verdict(rows, status, predictions, errors)
    if status == "FAILED":
        error = _cut(str(execution.get("Error") or "unknown error"))
        message = f"not scored: its batch ({_span(rows)}) failed with {error}"
    else:
        error = "not run"
        message = f"not scored: the job stopped before its batch ({_span(rows)}) ran"
    return Verdict(rows, status, message=message, failure=_failure(rows, status, error, execution.get("Cause")))


def _failure(rows: tuple[int, ...], status: str, error: str, cause: Any) -> dict[str, Any]:
    return {"rows": [rows[0] + 1, rows[-1] + 1], "status": status, "error": error, "cause": _cut(str(cause or ""))}


def _cut(text: str, limit: int = MAX_CAUSE) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass
class Export:
    """The Map Run(s) exported under a results prefix: one verdict per batch (a success wins over
    a failure, whichever export holds which), and what in the export could not be read."""

    verdicts: dict[tuple[int, ...], Verdict] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def add(self, verdict: Verdict) -> None:
        known = self.verdicts.get(verdict.rows)
        if known is None or verdict.rank > known.rank:
            self.verdicts[verdict.rows] = verdict

    def unreadable(self, what: str, error: Exception) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(f"{_cut(what, MAX_SHOWN)}: {_cut(f'{type(error).__name__}: {error}', MAX_SHOWN)}")


def _read_json(s3: Any, bucket: str, key: str) -> Any:
    return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def read_export(s3: Any, bucket: str, results_prefix: str) -> Export:
    """Every batch of the Map Run(s) exported under `results_prefix`. A manifest, result file or
    entry that cannot be read is noted, never fatal: its rows are then the ones no verdict covers."""
    export = Export()
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{results_prefix}/")
    manifests = sorted(
        item["Key"] for page in pages for item in page.get("Contents", []) if item["Key"].endswith("/manifest.json")
    )
    seen: set[tuple[str, str]] = set()
    for manifest_key in manifests:
        try:
            manifest = _read_json(s3, bucket, manifest_key)
            destination = str(manifest.get("DestinationBucket") or bucket)
            listed = [
                (str(status), str(entry["Key"]))
                for status, entries in manifest["ResultFiles"].items()
                for entry in entries
            ]
        except (ClientError, KeyError, TypeError, AttributeError, ValueError, RecursionError) as error:
            export.unreadable(manifest_key, error)
            continue
        for status, key in listed:
            if (destination, key) in seen:  # a file listed twice is read once
                continue
            seen.add((destination, key))
            try:
                executions = _read_json(s3, destination, key)
                entries = list(executions) if isinstance(executions, list) else []
                if not isinstance(executions, list):
                    raise ValueError("not a JSON array")
            except (ClientError, ValueError, RecursionError) as error:
                export.unreadable(key, error)
                continue
            for number, execution in enumerate(entries):
                try:
                    rows = _items(execution)
                except (KeyError, TypeError, ValueError, RecursionError) as error:
                    export.unreadable(f"{key} entry {number}", error)
                    continue
                export.add(_verdict(status, execution, rows))
    return export


@dataclass(frozen=True)
class InputRows:
    """The input file as the Map's ItemReader numbers it: how many rows, and each row's id."""

    count: int
    ids: list[Any] | None


def read_input(path: Path, kind: str, id_column: str | None) -> InputRows:
    """Count the rows of the input file at `path` (CSV: records after the header, blank lines
    skipped; JSON Lines: non-blank lines) and read each one's id when the job keys rows by one."""
    ids: list[Any] = []
    count = 0
    with path.open(newline="", encoding="utf-8-sig", errors="replace") as stream:
        if kind == "csv":
            reader = csv.reader(stream)
            header = next(reader, [])
            at = header.index(id_column) if id_column in header else None
            for record in reader:
                if record:
                    count += 1
                    ids.append(record[at] if at is not None and at < len(record) else None)
        else:
            for line in stream:
                if line.strip():
                    count += 1
                    ids.append(_json_id(line, id_column))
    return InputRows(count, ids if id_column is not None else None)


def _json_id(line: str, id_column: str | None) -> Any:
    if id_column is None:
        return None
    try:
        record = json.loads(line)
    except (ValueError, RecursionError):
        return None
    return record.get(id_column) if isinstance(record, dict) else None


def _columns(records: Iterable[dict[str, Any]]) -> list[str]:
    """Every key of `records`, in the order first seen: the CSV header."""
    return list(dict.fromkeys(key for record in records for key in record))


def write_records(path: Path, kind: str, records: list[dict[str, Any]]) -> None:
    """CSV (a header of every key, first seen first; none for no records) or JSON Lines."""
    with path.open("w", newline="", encoding="utf-8") as stream:
        if kind == "jsonl":
            stream.writelines(json.dumps(record) + "\n" for record in records)
        elif records:
            writer = csv.DictWriter(stream, _columns(records))
            writer.writeheader()
            writer.writerows(records)


@dataclass
class Outcome:
    """Every input row's one line, by 0-based index: a prediction, or an error with its reason."""

    predictions: dict[int, dict[str, Any]] = field(default_factory=dict)
    errors: dict[int, dict[str, Any]] = field(default_factory=dict)
    unscored: int = 0
    missing: int = 0
    """Rows no readable batch covers (a lost batch, or one whose result is damaged)."""
    outside: int = 0

    def place(self, index: int, record: dict[str, Any], predicted: bool, rows: int) -> None:
        """The row's line, unless it already has one (a row in two batches counts once) or the
        input has no such row (counted: the export does not belong to this input)."""
        if index >= rows:
            self.outside += 1
        elif index not in self.predictions and index not in self.errors:
            (self.predictions if predicted else self.errors)[index] = record


def _unscored_record(index: int, id_column: str | None, source: InputRows, message: str) -> dict[str, Any]:
    value = source.ids[index] if source.ids is not None else None
    key = {id_column: value} if id_column is not None and value is not None else {}
    return {ROW: index + 1, **key, ERROR: message}


def assign_rows(export: Export, source: InputRows, id_column: str | None) -> Outcome:
    """Each input row's one line: from the verdict of its batch (input order), or for a row no
    readable batch covers, an error saying so."""
    outcome = Outcome()
    for verdict in sorted(export.verdicts.values(), key=lambda verdict: (verdict.rows, -verdict.rank)):
        if verdict.status == "SUCCEEDED":
            for record in verdict.predictions:
                index = record.pop(INDEX)
                outcome.place(index, record, True, source.count)
            for record in verdict.errors:
                index = record.pop(INDEX)
                outcome.place(index, record, False, source.count)
        else:
            for index in verdict.rows:
                if index < source.count and index not in outcome.predictions and index not in outcome.errors:
                    outcome.unscored += 1
                    outcome.missing += verdict.status == DAMAGED
                outcome.place(index, _unscored_record(index, id_column, source, verdict.message), False, source.count)
    missing = [
        index for index in range(source.count) if index not in outcome.predictions and index not in outcome.errors
    ]
    reason = "; the export could not be read in part" if export.problems else ""
    for index in missing:
        message = f"not scored: the job's results hold no batch with this row{reason}"
        outcome.errors[index] = _unscored_record(index, id_column, source, message)
    outcome.unscored += len(missing)
    outcome.missing += len(missing)
    return outcome


def _input_rows(s3: Any, event: dict[str, Any], folder: Path, id_column: str | None) -> InputRows | str:
    """The input's rows, or why they cannot be counted."""
    path = folder / "input"
    try:
        s3.download_file(event["input"]["bucket"], event["input"]["key"], str(path))
    except ClientError as error:
        return f"the input could not be read to count its rows: {_cut(str(error), MAX_SHOWN)}"
    try:
        return read_input(path, event["format"], id_column)
    finally:
        path.unlink()


def finish(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Writes the job's files from its results export; returns the summary's counts (the full
    summary, with every failed batch, is in summary.json: it could outgrow the state's 256 KB).
    The job SUCCEEDED only when the Map Run did and every input row is in exactly one file,
    from a batch's verdict; otherwise `problems` says what was wrong."""
    s3 = boto3.client("s3")
    output = event["output"]
    kind = event["format"]
    id_column = event["batch"]["id_column"]
    export = read_export(s3, output["bucket"], event["results_prefix"])
    problems: list[str] = []
    with tempfile.TemporaryDirectory() as folder:
        source = _input_rows(s3, event, Path(folder), id_column)
        if isinstance(source, str):
            problems.append(source)
            # Counted from the export instead: every row it names, and none it does not.
            last = max((index for rows in export.verdicts for index in rows), default=-1)
            source = InputRows(last + 1, None)
        outcome = assign_rows(export, source, id_column)
        predictions = [outcome.predictions[index] for index in sorted(outcome.predictions)]
        errors = [outcome.errors[index] for index in sorted(outcome.errors)]
        uri = f"s3://{output['bucket']}/{output['prefix']}"
        files = {"predictions": f"predictions.{kind}", "errors": f"errors.{kind}"}
        for name, records in (("predictions", predictions), ("errors", errors)):
            path = Path(folder) / files[name]
            write_records(path, kind, records)
            s3.upload_file(
                str(path),
                output["bucket"],
                output["prefix"] + files[name],
                ExtraArgs={"ContentType": CONTENT_TYPES[kind]},
            )
    if outcome.missing:
        problems.append(f"{outcome.missing} rows have no readable batch in the job's results (see errors.{kind})")
    if outcome.outside:
        problems.append(f"the job's results hold {outcome.outside} rows the input does not have")
    map_error = event.get("map_error")
    if map_error:
        problems.insert(0, f"the Map Run failed: {map_error.get('Error')}")
    if len(predictions) + len(errors) != source.count:  # a broken invariant is reported, never hidden
        problems.append(f"{source.count} input rows, but {len(predictions) + len(errors)} lines written")
    failures = [
        verdict.failure for verdict in sorted(export.verdicts.values(), key=lambda v: v.rows) if verdict.failure
    ]
    counts = {
        "status": "FAILED" if problems else "SUCCEEDED",
        "rows": source.count,
        "predicted": len(predictions),
        "rejected": len(errors) - outcome.unscored,
        "unscored": outcome.unscored,
        "batches": len(export.verdicts),
        "failed_batches": len(failures),
    }
    summary: dict[str, Any] = {
        "input": f"s3://{event['input']['bucket']}/{event['input']['key']}",
        **counts,
        "files": {name: uri + path for name, path in files.items()},
        "failures": failures,
        "problems": problems[:MAX_PROBLEMS],
        # Parts of the export that could not be read; harmless when other exports held their batches.
        "unreadable": export.problems,
    }
    if map_error:
        summary["error"] = {"error": str(map_error.get("Error")), "cause": _cut(str(map_error.get("Cause") or ""))}
    # Written last: a summary.json under the prefix means the files beside it are complete.
    s3.put_object(
        Bucket=output["bucket"],
        Key=output["prefix"] + SUMMARY_FILE,
        Body=json.dumps(summary, indent=2).encode(),
        ContentType="application/json",
    )
    logger.info("batch scoring finished: %s", json.dumps(counts))
    return {**counts, "summary": uri + SUMMARY_FILE}

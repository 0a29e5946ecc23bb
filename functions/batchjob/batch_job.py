"""The BatchScoring state machine's own two steps (template.yaml): reading the request before the
Distributed Map, and turning the Map Run's result export into files after it.

`start` takes the execution input {"input": "s3://bucket/key.csv|.jsonl", "output":
"s3://bucket/prefix/"} (optionally "probabilities" and "id_column") and returns the state the Map
states read: bucket and key apart (ItemReader takes them separately), the input's format (its
InputType cannot come from a path, so a Choice picks the CSV or the JSON Lines Map state), the
options for every batch and the job's limits; or {"error": ...} for a request it refuses.

`finish` reads what the Map's ResultWriter exported under the job's results prefix (a
manifest.json listing SUCCEEDED_n, FAILED_n and PENDING_n files, each a JSON array of child
executions with their Input and Output as JSON text) and writes, under the output prefix,
predictions and errors (in the input's format, in input order) and summary.json, last. A batch
that failed, or never ran because the job stopped, is reported with its rows: each of its rows
is a line of the errors file, so every input row is in exactly one of the two files.

Standard library and boto3 only (the Lambda runtime provides boto3).
"""

from __future__ import annotations

import csv
import json
import logging
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

logger = logging.getLogger()
logger.setLevel(logging.INFO)

FORMATS = {".csv": "csv", ".jsonl": "jsonl"}
CONTENT_TYPES = {"csv": "text/csv", "jsonl": "application/x-ndjson"}
DEFAULT_ID_COLUMN = "id"
ROW = "row"
ERROR = "error"
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


def start(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """{"request": <execution input>, "execution": <execution name>} -> the job's state, or {"error": ...}."""
    try:
        return read_request(event.get("request"), str(event["execution"]), Settings.from_environment())
    except RequestError as error:
        return {"error": str(error)}


@dataclass
class Batch:
    """One child execution's outcome: its rows' predictions and errors, or why it has none."""

    first: int
    predictions: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    failure: dict[str, Any] | None = None


def _items(execution: dict[str, Any]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = json.loads(execution.get("Input") or "{}").get("Items", [])
    return items


def _batch(status: str, execution: dict[str, Any], id_column: str) -> Batch:
    """The Batch of one entry of a ResultWriter result file."""
    items = _items(execution)
    first = int(items[0]["index"]) + 1 if items else 0
    if status == "SUCCEEDED":
        output = json.loads(execution["Output"])
        return Batch(first, output["predictions"], output["errors"])
    rows = [first, int(items[-1]["index"]) + 1] if items else None
    if status == "FAILED":
        reason = f"its batch (rows {rows[0]}-{rows[1]}) failed" if rows else "its batch failed"
        error = str(execution.get("Error") or "unknown error")
        message = f"not scored: {reason} with {error}"
    else:
        reason = f"its batch (rows {rows[0]}-{rows[1]})" if rows else "its batch"
        error = "not run"
        message = f"not scored: the job stopped before {reason} ran"
    errors = []
    for item in items:
        record = item.get("row")
        key = {id_column: record[id_column]} if isinstance(record, dict) and id_column in record else {}
        errors.append({ROW: int(item["index"]) + 1, **key, ERROR: message})
    cause = str(execution.get("Cause") or "")
    failure = {"rows": rows, "status": status, "error": error, "cause": cause[:MAX_CAUSE]}
    return Batch(first, [], errors, failure)


def read_results(s3: Any, bucket: str, results_prefix: str, id_column: str) -> list[Batch]:
    """Every batch of the Map Run(s) exported under `results_prefix`, in input order."""
    batches: list[Batch] = []
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{results_prefix}/")
    manifests = [
        item["Key"] for page in pages for item in page.get("Contents", []) if item["Key"].endswith("/manifest.json")
    ]
    for manifest_key in manifests:
        manifest = json.loads(s3.get_object(Bucket=bucket, Key=manifest_key)["Body"].read())
        for status, files in manifest["ResultFiles"].items():
            for result_file in files:
                body = s3.get_object(Bucket=manifest["DestinationBucket"], Key=result_file["Key"])["Body"].read()
                batches.extend(_batch(status, execution, id_column) for execution in json.loads(body))
    return sorted(batches, key=lambda batch: batch.first)


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


def _all(batches: list[Batch], part: str) -> Iterator[dict[str, Any]]:
    for batch in batches:
        yield from getattr(batch, part)


def finish(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Writes the job's files from its results export; returns the summary's counts (the full
    summary, with every failed batch, is in summary.json: it could outgrow the state's 256 KB)."""
    s3 = boto3.client("s3")
    output = event["output"]
    kind = event["format"]
    batches = read_results(s3, output["bucket"], event["results_prefix"], event["batch"]["id_column"])
    failures = [batch.failure for batch in batches if batch.failure is not None]
    predictions = list(_all(batches, "predictions"))
    errors = list(_all(batches, "errors"))
    unscored = sum(len(batch.errors) for batch in batches if batch.failure is not None)
    map_error = event.get("map_error")
    uri = f"s3://{output['bucket']}/{output['prefix']}"
    files = {"predictions": f"predictions.{kind}", "errors": f"errors.{kind}"}
    with tempfile.TemporaryDirectory() as folder:
        for name, records in (("predictions", predictions), ("errors", errors)):
            path = Path(folder) / files[name]
            write_records(path, kind, records)
            s3.upload_file(
                str(path),
                output["bucket"],
                output["prefix"] + files[name],
                ExtraArgs={"ContentType": CONTENT_TYPES[kind]},
            )
    counts = {
        "status": "FAILED" if map_error else "SUCCEEDED",
        "rows": len(predictions) + len(errors),
        "predicted": len(predictions),
        "rejected": len(errors) - unscored,
        "unscored": unscored,
        "batches": len(batches),
        "failed_batches": len(failures),
    }
    summary = {
        "input": f"s3://{event['input']['bucket']}/{event['input']['key']}",
        **counts,
        "files": {name: uri + path for name, path in files.items()},
        "failures": failures,
    }
    if map_error:
        summary["error"] = {
            "error": str(map_error.get("Error")),
            "cause": str(map_error.get("Cause") or "")[:MAX_CAUSE],
        }
    # Written last: a summary.json under the prefix means the files beside it are complete.
    s3.put_object(
        Bucket=output["bucket"],
        Key=output["prefix"] + SUMMARY_FILE,
        Body=json.dumps(summary, indent=2).encode(),
        ContentType="application/json",
    )
    logger.info("batch scoring finished: %s", json.dumps(counts))
    return {**counts, "summary": uri + SUMMARY_FILE}

"""functions/batchjob/batch_job.py, `finish`: every input row lands in exactly one of the job's two
files, once, tied to its input row, whatever the Map Run's export looks like: batches exported
twice, in two Map Runs with different verdicts, missing, listed twice, in files that are gone or
not JSON, under manifests that are not JSON, in any order. The batches' answers here are
generated (the real handler's shapes: predictions keyed by id or row, errors with their row), so
the property is checked on hundreds of exports in seconds; tests/unit/test_batch_job.py feeds
the real scoring handler."""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import batch_job
from local.lambda_runtime import LambdaContext

INPUT_BUCKET, OUTPUT_BUCKET = "rows-in", "scores-out"
STATE_MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:job"
# How an appearance of a batch in an export reads: the verdict it gives, and whether its file or
# its manifest can be read at all.
STATUSES = ("SUCCEEDED", "FAILED", "PENDING", "DAMAGED")
FILE_STATES = ("ok", "ok", "ok", "missing", "not-json")


@pytest.fixture
def s3(s3_client: Any) -> Any:
    s3_client.create_bucket(Bucket=INPUT_BUCKET)
    s3_client.create_bucket(Bucket=OUTPUT_BUCKET)
    return s3_client


def rejected(index: int) -> bool:
    """Which rows the generated model refuses: a fixed rule, so the oracle knows."""
    return index % 4 == 3


def answer(rows: list[int], id_column: str | None) -> dict[str, Any]:
    """A batch's answer as functions/predict/batch.py returns it."""
    predictions, errors = [], []
    for index in rows:
        key = {id_column: f"c-{index}"} if id_column else {"row": index + 1}
        if rejected(index):
            errors.append({"row": index + 1, **key, "error": "not a number"})
        else:
            predictions.append({**key, "prediction": index % 3})
    return {"predictions": predictions, "errors": errors}


@dataclass(frozen=True)
class Appearance:
    batch: int
    status: str
    run: int
    file_state: str


def entry(appearance: Appearance, rows: list[int], id_column: str | None) -> dict[str, Any]:
    """One child execution as ResultWriter exports it."""
    items = [{"index": index, "row": {"x": "1"}} for index in rows]
    result: dict[str, Any] = {
        "Input": json.dumps({"Items": items, "BatchInput": {}}),
        "Status": "SUCCEEDED" if appearance.status == "DAMAGED" else appearance.status,
        "Name": str(uuid.uuid4()),
        "StateMachineArn": STATE_MACHINE,
    }
    if appearance.status == "SUCCEEDED":
        result["Output"] = json.dumps(answer(rows, id_column))
    elif appearance.status == "DAMAGED":  # an answer that lost a row
        result["Output"] = json.dumps({"predictions": [], "errors": []} if len(rows) > 1 else {"x": 1})
    elif appearance.status == "FAILED":
        result |= {"Error": "Sandbox.Timedout", "Cause": "timed out"}
    return result


@st.composite
def jobs(draw: st.DrawFn) -> dict[str, Any]:
    count = draw(st.integers(0, 30))
    size = draw(st.integers(1, 7))
    batches = [list(range(start, min(start + size, count))) for start in range(0, count, size)]
    runs = draw(st.integers(1, 3))
    appearances = [
        Appearance(
            number, draw(st.sampled_from(STATUSES)), draw(st.integers(0, runs - 1)), draw(st.sampled_from(FILE_STATES))
        )
        for number in range(len(batches))
        for _ in range(draw(st.integers(0, 3)))
    ]
    return {
        "count": count,
        "batches": batches,
        "runs": runs,
        "appearances": draw(st.permutations(appearances)),
        "damaged_manifests": draw(st.sets(st.integers(0, runs - 1), max_size=1)),
        "listed_twice": draw(st.booleans()),
        "kind": draw(st.sampled_from(["csv", "jsonl"])),
        "ids": draw(st.booleans()),
        "map_error": draw(st.booleans()),
    }


def write_input(s3: Any, key: str, job: dict[str, Any]) -> None:
    """The input file: `count` rows, each with an id when the job has ids."""
    rows = [{**({"id": f"c-{index}"} if job["ids"] else {}), "x": str(index)} for index in range(job["count"])]
    if job["kind"] == "csv":
        text = io.StringIO()
        writer = csv.DictWriter(text, ["id", "x"] if job["ids"] else ["x"])
        writer.writeheader()
        writer.writerows(rows)
        body = text.getvalue()
    else:
        body = "".join(json.dumps(row) + "\n" for row in rows)
    s3.put_object(Bucket=INPUT_BUCKET, Key=key, Body=body.encode())


def write_export(s3: Any, results_prefix: str, job: dict[str, Any], id_column: str | None) -> None:
    """The Map Run(s) under `results_prefix`: per run a manifest and a file per (status, file state)."""
    for run in range(job["runs"]):
        folder = f"{results_prefix}/{uuid.uuid4()}"
        groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for appearance in job["appearances"]:
            if appearance.run == run:
                rows = job["batches"][appearance.batch]
                status = "SUCCEEDED" if appearance.status == "DAMAGED" else appearance.status
                groups.setdefault((status, appearance.file_state), []).append(entry(appearance, rows, id_column))
        files: dict[str, list[dict[str, Any]]] = {"SUCCEEDED": [], "FAILED": [], "PENDING": []}
        for number, ((status, file_state), entries) in enumerate(groups.items()):
            key = f"{folder}/{status}_{number}.json"
            if file_state == "ok":
                s3.put_object(Bucket=OUTPUT_BUCKET, Key=key, Body=json.dumps(entries).encode())
            elif file_state == "not-json":
                s3.put_object(Bucket=OUTPUT_BUCKET, Key=key, Body=b'[{"Status": "SUCC')
            files[status].append({"Key": key, "Size": 1})
            if job["listed_twice"]:
                files[status].append({"Key": key, "Size": 1})
        manifest = {"DestinationBucket": OUTPUT_BUCKET, "MapRunArn": "arn", "ResultFiles": files}
        body = b"{not json" if run in job["damaged_manifests"] else json.dumps(manifest).encode()
        s3.put_object(Bucket=OUTPUT_BUCKET, Key=f"{folder}/manifest.json", Body=body)


def expected_verdicts(job: dict[str, Any]) -> dict[int, str | None]:
    """Each batch's verdict from the appearances that can be read: a success wins, then a
    failure, then a damaged answer, then never run; None when no readable one exists."""
    rank = {"SUCCEEDED": 3, "FAILED": 2, "DAMAGED": 1, "PENDING": 0}
    verdicts: dict[int, str | None] = dict.fromkeys(range(len(job["batches"])))
    for appearance in job["appearances"]:
        if appearance.file_state != "ok" or appearance.run in job["damaged_manifests"]:
            continue
        known = verdicts[appearance.batch]
        if known is None or rank[appearance.status] > rank[known]:
            verdicts[appearance.batch] = appearance.status
    return verdicts


def read_lines(s3: Any, key: str, kind: str) -> list[dict[str, Any]]:
    text = s3.get_object(Bucket=OUTPUT_BUCKET, Key=key)["Body"].read().decode()
    if kind == "csv":
        return list(csv.DictReader(io.StringIO(text)))
    return [json.loads(line) for line in text.splitlines()]


@pytest.mark.slow
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(job=jobs())
def test_every_input_row_is_in_exactly_one_file_once_whatever_the_export(s3: Any, job: dict[str, Any]) -> None:
    name = uuid.uuid4().hex
    input_key = f"in/{name}.{job['kind']}"
    write_input(s3, input_key, job)
    request = {"input": f"s3://{INPUT_BUCKET}/{input_key}", "output": f"s3://{OUTPUT_BUCKET}/{name}/"}
    state = batch_job.read_request(request, name, batch_job.Settings(INPUT_BUCKET, OUTPUT_BUCKET, 7, 1, 0.0))
    id_column = "id" if job["ids"] else None
    state["batch"]["id_column"] = id_column
    if job["map_error"]:
        state["map_error"] = {"Error": "States.ExceedToleratedFailureThreshold", "Cause": "too many"}
    write_export(s3, state["results_prefix"], job, id_column)

    answered = batch_job.finish(state, LambdaContext())

    kind = job["kind"]
    predictions = read_lines(s3, f"{name}/predictions.{kind}", kind)
    errors = read_lines(s3, f"{name}/errors.{kind}", kind)
    # Each line tied to its input row: by id when the file has ids, else by row number.
    predicted_rows = [int(line["id"][2:]) if id_column else int(line["row"]) - 1 for line in predictions]
    error_rows = [int(line["row"]) - 1 for line in errors]
    lines = Counter(predicted_rows + error_rows)
    assert sorted(lines) == list(range(job["count"]))
    assert set(lines.values()) <= {1}
    if id_column:
        assert all(line["id"] == f"c-{int(line['row']) - 1}" for line in errors)
    assert predicted_rows == sorted(predicted_rows)
    assert error_rows == sorted(error_rows)

    verdicts = expected_verdicts(job)
    batch_of = {index: number for number, rows in enumerate(job["batches"]) for index in rows}
    by_row = {int(line["row"]) - 1: line["error"] for line in errors}
    for index in range(job["count"]):
        verdict = verdicts[batch_of[index]]
        if verdict == "SUCCEEDED":
            assert (index in by_row) == rejected(index)
            assert by_row.get(index, "not a number") == "not a number"
        elif verdict is None:
            assert by_row[index].startswith("not scored: the job's results hold no batch with this row")
        elif verdict == "DAMAGED":
            assert "is damaged" in by_row[index]
        elif verdict == "FAILED":
            assert "failed with Sandbox.Timedout" in by_row[index]
        else:
            assert "the job stopped before its batch" in by_row[index]

    summary = json.loads(s3.get_object(Bucket=OUTPUT_BUCKET, Key=f"{name}/summary.json")["Body"].read())
    assert summary["rows"] == job["count"] == summary["predicted"] + summary["rejected"] + summary["unscored"]
    assert (summary["predicted"], summary["rejected"] + summary["unscored"]) == (len(predictions), len(errors))
    complete = all(verdict not in (None, "DAMAGED") for verdict in verdicts.values())
    assert summary["status"] == ("SUCCEEDED" if complete and not job["map_error"] else "FAILED")
    assert bool(summary["problems"]) == (summary["status"] == "FAILED")
    assert answered["status"] == summary["status"]


def test_an_input_that_cannot_be_read_fails_the_job_and_says_so(s3: Any) -> None:
    request = {"input": f"s3://{INPUT_BUCKET}/gone.csv", "output": f"s3://{OUTPUT_BUCKET}/out/"}
    state = batch_job.read_request(request, "run-1", batch_job.Settings(INPUT_BUCKET, OUTPUT_BUCKET, 7, 1, 0.0))

    answered = batch_job.finish(state, LambdaContext())

    summary = json.loads(s3.get_object(Bucket=OUTPUT_BUCKET, Key="out/summary.json")["Body"].read())
    assert answered["status"] == summary["status"] == "FAILED"
    assert summary["problems"][0].startswith("the input could not be read to count its rows")

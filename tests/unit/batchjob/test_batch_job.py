"""functions/batchjob/batch_job.py: the batch job's request step, and its last step against moto
S3, fed ResultWriter exports shaped as Step Functions writes them, the batches' answers coming
from the real scoring handler (functions/predict/batch.py) over generated rows."""

from __future__ import annotations

import csv
import io
import json
import random
import uuid
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import batch_job
from local.lambda_runtime import LambdaContext

INPUT_BUCKET, OUTPUT_BUCKET = "rows-in", "scores-out"
NAMES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
SETTINGS = batch_job.Settings(INPUT_BUCKET, OUTPUT_BUCKET, 500, 100, 5.0)
STATE_MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:iris-predict-batch-scoring"


def request(**changes: Any) -> dict[str, Any]:
    return {"input": f"s3://{INPUT_BUCKET}/daily/rows.csv", "output": f"s3://{OUTPUT_BUCKET}/scored/", **changes}


# --- start: the execution input ---------------------------------------------------------------


@given(
    key=st.lists(st.text(st.characters(blacklist_characters="/", blacklist_categories=["Cs"]), min_size=1), min_size=1),
    kind=st.sampled_from([".csv", ".jsonl"]),
    prefix=st.lists(st.text(st.characters(blacklist_characters="/", blacklist_categories=["Cs"]), min_size=1)),
    execution=st.uuids().map(str),
)
def test_a_request_becomes_the_state_the_map_reads(
    key: list[str], kind: str, prefix: list[str], execution: str
) -> None:
    input_key = "/".join(key) + kind
    output_prefix = "".join(part + "/" for part in prefix)
    job = request(input=f"s3://{INPUT_BUCKET}/{input_key}", output=f"s3://{OUTPUT_BUCKET}/{output_prefix}")

    state = batch_job.read_request(job, execution, SETTINGS)

    assert state["input"] == {"bucket": INPUT_BUCKET, "key": input_key}
    assert state["output"] == {"bucket": OUTPUT_BUCKET, "prefix": output_prefix}
    assert state["format"] == kind[1:]
    assert state["results_prefix"] == f"{output_prefix}map-results/{execution}"
    assert state["batch"] == {"probabilities": False, "id_column": "id"}
    assert state["limits"] == {"rows_per_batch": 500, "max_concurrency": 100, "tolerated_failure_percentage": 5.0}


@pytest.mark.parametrize(
    ("job", "message"),
    [
        ([1, 2], "expected a JSON object"),
        (
            request(inputs="s3://x/y.csv"),
            'unknown key "inputs": accepted keys are input, output, probabilities, id_column',
        ),
        (request(input=None), 'input: expected an S3 URI "s3://rows-in/...", got null'),
        (request(input="https://rows-in/a.csv"), "input: expected an S3 URI"),
        (request(input="s3://rows-in"), "input: expected an S3 URI"),
        (request(input="s3://other/a.csv"), 'input: this job may use the bucket rows-in only, got "other"'),
        (request(input="s3://rows-in/a.parquet"), 'input: expected a key ending in .csv or .jsonl, got "a.parquet"'),
        (request(output="s3://rows-in/scored/"), "output: this job may use the bucket scores-out only"),
        (request(output="s3://scores-out/scored"), 'output: expected a prefix ending in "/", got "scored"'),
        (request(probabilities="yes"), 'probabilities: expected true or false, got "yes"'),
        (request(id_column=""), 'id_column: expected a column name, got ""'),
    ],
)
def test_a_request_the_job_cannot_run_is_refused_with_what_is_accepted(
    job: Any, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {
        "INPUT_BUCKET": INPUT_BUCKET,
        "OUTPUT_BUCKET": OUTPUT_BUCKET,
        "ROWS_PER_BATCH": "500",
        "MAX_CONCURRENCY": "100",
        "TOLERATED_FAILURE_PERCENTAGE": "5",
    }.items():
        monkeypatch.setenv(name, value)

    answer = batch_job.start({"request": job, "execution": "run-1"}, LambdaContext())

    assert list(answer) == ["error"]
    assert message in answer["error"]


# Values of 1,000 to 5,000 characters, a generated text repeated: generated character by character,
# they made this the costliest test of the inner loop (4 CPU-s for the profile's 30 examples).
LONG_VALUES = st.builds(lambda unit, length: (unit * length)[:length], st.text(min_size=1), st.integers(1000, 5000))


@given(value=LONG_VALUES)
def test_a_refusal_stays_short_whatever_the_request(value: str) -> None:
    for job in (request(input=value), request(output=f"s3://{value}/"), request(id_column=[value]), {value: 1}):
        with pytest.raises(batch_job.RequestError) as refused:
            batch_job.read_request(job, "run-1", SETTINGS)
        assert len(str(refused.value)) < 300


# --- finish: the Map Run's export into files ---------------------------------------------------


@pytest.fixture
def s3(s3_client: Any) -> Any:
    s3_client.create_bucket(Bucket=INPUT_BUCKET)
    s3_client.create_bucket(Bucket=OUTPUT_BUCKET)
    return s3_client


def put_input(s3: Any, rows: list[dict[str, Any]], kind: str) -> None:
    """The input file the rows came from: finish counts its rows."""
    if kind == "csv":
        text = io.StringIO()
        writer = csv.DictWriter(text, list(dict.fromkeys(key for row in rows for key in row)))
        writer.writeheader()
        writer.writerows(rows)
        body = text.getvalue()
    else:
        body = "".join(json.dumps(row) + "\n" for row in rows)
    s3.put_object(Bucket=INPUT_BUCKET, Key=f"daily/rows.{kind}", Body=body.encode())


def generated_rows(generator: random.Random, count: int, kind: str) -> list[Any]:
    """Iris rows as the ItemReader gives them (CSV: every cell a string), some of them bad."""
    rows: list[Any] = []
    for number in range(count):
        values: dict[str, Any] = {name: round(generator.uniform(0, 8), 1) for name in NAMES}
        if generator.random() < 0.15:
            values[generator.choice(NAMES)] = generator.choice(["wide", "", None, "1,5"])
        if kind == "csv":
            values = {name: "" if value is None else str(value) for name, value in values.items()}
        # A CSV has the same columns on every line; a JSON Lines object may lack the id.
        rows.append({"id": f"customer-{number}", **values} if number % 3 or kind == "csv" else values)
    return rows


def child_execution(status: str, batch: dict[str, Any], output: Any = None) -> dict[str, Any]:
    """One entry of a ResultWriter result file (Transformation NONE, the default with S3)."""
    name = str(uuid.uuid4())
    entry: dict[str, Any] = {
        "ExecutionArn": f"{STATE_MACHINE.replace('stateMachine', 'express')}/ScoreCsv:{name}",
        "Input": json.dumps(batch),
        "InputDetails": {"Included": True},
        "Name": name,
        "StartDate": "2026-11-27T10:00:00.000Z",
        "StateMachineArn": STATE_MACHINE,
        "Status": status,
        "StopDate": "2026-11-27T10:00:01.000Z",
    }
    if status == "SUCCEEDED":
        entry |= {"Output": json.dumps(output), "OutputDetails": {"Included": True}}
    elif status == "FAILED":
        entry |= {"Error": "Sandbox.Timedout", "Cause": "Task timed out after 60.00 seconds" * 50}
    return entry


def export(s3: Any, results_prefix: str, executions: dict[str, list[dict[str, Any]]]) -> None:
    """Writes a Map Run's export as ResultWriter does: <prefix>/<map run id>/manifest.json and
    one or more <STATUS>_<n>.json files, each a JSON array of child executions."""
    folder = f"{results_prefix}/{uuid.uuid4()}"
    files: dict[str, list[dict[str, Any]]] = {"FAILED": [], "PENDING": [], "SUCCEEDED": []}
    for status, entries in executions.items():
        for number, part in enumerate([entries[: len(entries) // 2], entries[len(entries) // 2 :]]):
            if part:
                key = f"{folder}/{status}_{number}.json"
                body = json.dumps(part).encode()
                s3.put_object(Bucket=OUTPUT_BUCKET, Key=key, Body=body)
                files[status].append({"Key": key, "Size": len(body)})
    manifest = {
        "DestinationBucket": OUTPUT_BUCKET,
        "MapRunArn": f"{STATE_MACHINE}/Map:{uuid.uuid4()}",
        "ResultFiles": files,
    }
    s3.put_object(Bucket=OUTPUT_BUCKET, Key=f"{folder}/manifest.json", Body=json.dumps(manifest).encode())


def job_state(kind: str, **changes: Any) -> dict[str, Any]:
    state = batch_job.read_request(request(input=f"s3://{INPUT_BUCKET}/daily/rows.{kind}"), "run-1", SETTINGS)
    return {**state, "map": {"ResultWriterDetails": {"Bucket": OUTPUT_BUCKET}}, **changes}


def read_records(s3: Any, key: str, kind: str) -> list[dict[str, Any]]:
    text = s3.get_object(Bucket=OUTPUT_BUCKET, Key=key)["Body"].read().decode()
    if kind == "csv":
        return list(csv.DictReader(io.StringIO(text)))
    return [json.loads(line) for line in text.splitlines()]


def as_written(records: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    """What reading a record back from the file gives (CSV: text; a key it lacks is empty)."""
    if kind == "jsonl":
        return records
    columns = list(dict.fromkeys(key for record in records for key in record))
    return [{column: str(record.get(column, "")) for column in columns} for record in records]


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("kind", ["csv", "jsonl"])
def test_the_files_hold_every_row_once_in_input_order_with_failed_batches_reported(
    s3: Any, batch_module: ModuleType, seed: int, kind: str
) -> None:
    generator = random.Random(seed)
    rows = generated_rows(generator, generator.randint(50, 400), kind)
    size = generator.randint(7, 60)
    options = {"text": kind == "csv", "probabilities": seed % 2 == 1, "id_column": "id"}
    batches = [
        {
            "Items": [{"index": index, "row": rows[index]} for index in range(start, min(start + size, len(rows)))],
            "BatchInput": options,
        }
        for start in range(0, len(rows), size)
    ]
    failed = set(generator.sample(range(len(batches)), k=min(2, len(batches) - 1)))
    executions: dict[str, list[dict[str, Any]]] = {"SUCCEEDED": [], "FAILED": []}
    for number, batch in enumerate(batches):
        if number in failed:
            executions["FAILED"].append(child_execution("FAILED", batch))
        else:
            executions["SUCCEEDED"].append(
                child_execution("SUCCEEDED", batch, batch_module.handler(batch, LambdaContext()))
            )
    for entries in executions.values():
        generator.shuffle(entries)  # the export's order is not the input's
    state = job_state(kind)
    export(s3, state["results_prefix"], executions)
    put_input(s3, rows, kind)

    answer = batch_job.finish(state, LambdaContext())

    answers = [batch_module.handler(batch, None) for number, batch in enumerate(batches) if number not in failed]
    lost = {index + 1 for number in failed for index in range(number * size, min((number + 1) * size, len(rows)))}
    expected_predictions = [record for answer in answers for record in answer["predictions"]]
    predictions = read_records(s3, f"scored/predictions.{kind}", kind)
    errors = read_records(s3, f"scored/errors.{kind}", kind)
    assert predictions == as_written(expected_predictions, kind)
    assert sorted(int(error["row"]) for error in errors) == sorted(
        {int(error["row"]) for answer in answers for error in answer["errors"]} | lost
    )
    assert [int(error["row"]) for error in errors] == sorted(int(error["row"]) for error in errors)
    for error in errors:
        if int(error["row"]) in lost:
            first = (int(error["row"]) - 1) // size * size + 1
            last = min(first + size - 1, len(rows))
            assert error["error"] == f"not scored: its batch (rows {first}-{last}) failed with Sandbox.Timedout"
            assert error.get("id", "") == rows[int(error["row"]) - 1].get("id", "")
    summary = json.loads(s3.get_object(Bucket=OUTPUT_BUCKET, Key="scored/summary.json")["Body"].read())
    counts = {
        "status": "SUCCEEDED",
        "rows": len(rows),
        "predicted": len(expected_predictions),
        "rejected": len(errors) - len(lost),
        "unscored": len(lost),
        "batches": len(batches),
        "failed_batches": len(failed),
    }
    assert {key: summary[key] for key in counts} == counts
    assert answer == {**counts, "summary": f"s3://{OUTPUT_BUCKET}/scored/summary.json"}
    assert sorted(tuple(failure["rows"]) for failure in summary["failures"]) == sorted(
        (number * size + 1, min((number + 1) * size, len(rows))) for number in failed
    )
    assert all(len(failure["cause"]) <= batch_job.MAX_CAUSE for failure in summary["failures"])
    assert summary["files"] == {
        "predictions": f"s3://{OUTPUT_BUCKET}/scored/predictions.{kind}",
        "errors": f"s3://{OUTPUT_BUCKET}/scored/errors.{kind}",
    }


def test_an_empty_input_gives_empty_files_and_a_summary_of_nothing(s3: Any) -> None:
    state = job_state("csv")
    export(s3, state["results_prefix"], {})
    put_input(s3, [], "csv")

    answer = batch_job.finish(state, LambdaContext())

    for name in ("predictions.csv", "errors.csv"):
        assert s3.get_object(Bucket=OUTPUT_BUCKET, Key=f"scored/{name}")["Body"].read() == b""
    summary = json.loads(s3.get_object(Bucket=OUTPUT_BUCKET, Key="scored/summary.json")["Body"].read())
    assert summary["rows"] == summary["predicted"] == summary["rejected"] == summary["batches"] == 0
    assert (answer["status"], summary["failures"]) == ("SUCCEEDED", [])


def test_batches_the_job_never_ran_are_reported_row_by_row(s3: Any, batch_module: ModuleType) -> None:
    options = {"text": False, "probabilities": False, "id_column": "id"}
    rows = generated_rows(random.Random(5), 20, "jsonl")
    first = {"Items": [{"index": i, "row": rows[i]} for i in range(10)], "BatchInput": options}
    second = {"Items": [{"index": i, "row": rows[i]} for i in range(10, 20)], "BatchInput": options}
    state = job_state(
        "jsonl", map_error={"Error": "States.ExceedToleratedFailureThreshold", "Cause": "too many failed"}
    )
    put_input(s3, rows, "jsonl")
    export(
        s3,
        state["results_prefix"],
        {
            "SUCCEEDED": [child_execution("SUCCEEDED", first, batch_module.handler(first, None))],
            "PENDING": [child_execution("PENDING", second)],
        },
    )

    answer = batch_job.finish(state, LambdaContext())

    errors = read_records(s3, "scored/errors.jsonl", "jsonl")
    assert [error["row"] for error in errors if "stopped" in error["error"]] == list(range(11, 21))
    assert {error["error"] for error in errors if error["row"] > 10} == {
        "not scored: the job stopped before its batch (rows 11-20) ran"
    }
    summary = json.loads(s3.get_object(Bucket=OUTPUT_BUCKET, Key="scored/summary.json")["Body"].read())
    assert (answer["status"], answer["unscored"], answer["rows"]) == ("FAILED", 10, 20)
    assert summary["error"] == {"error": "States.ExceedToleratedFailureThreshold", "cause": "too many failed"}
    assert summary["failures"] == [{"rows": [11, 20], "status": "PENDING", "error": "not run", "cause": ""}]


def test_a_job_that_failed_before_scoring_still_leaves_a_summary(s3: Any) -> None:
    state = job_state(
        "csv", map_error={"Error": "States.ItemReaderFailed", "Cause": "The specified key does not exist."}
    )

    answer = batch_job.finish(state, LambdaContext())

    summary = json.loads(s3.get_object(Bucket=OUTPUT_BUCKET, Key="scored/summary.json")["Body"].read())
    assert (answer["status"], answer["rows"], answer["batches"]) == ("FAILED", 0, 0)
    assert summary["error"]["error"] == "States.ItemReaderFailed"

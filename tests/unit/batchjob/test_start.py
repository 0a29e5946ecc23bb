"""functions/batchjob/batch_job.py, `start`: a job whose output would overwrite its input, or
whose id column is one the job writes, is refused before anything runs; what keys every output
line (the id column, or the row number) is decided once, from the input's first record."""

from __future__ import annotations

from typing import Any

import pytest

import batch_job
from local.lambda_runtime import LambdaContext

BUCKET = "rows"
ENVIRONMENT = {
    "INPUT_BUCKET": BUCKET,
    "OUTPUT_BUCKET": BUCKET,
    "ROWS_PER_BATCH": "500",
    "MAX_CONCURRENCY": "10",
    "TOLERATED_FAILURE_PERCENTAGE": "0",
}


@pytest.fixture
def s3(s3_client: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    for name, value in ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    s3_client.create_bucket(Bucket=BUCKET)
    return s3_client


def start(**request: Any) -> dict[str, Any]:
    return batch_job.start({"request": request, "execution": "run-1"}, LambdaContext())


@pytest.mark.parametrize(
    ("input_key", "output_prefix"),
    [("daily/rows.csv", "daily/"), ("daily/rows.csv", ""), ("out/predictions.csv", "out/")],
)
def test_an_output_prefix_that_holds_the_input_is_refused(s3: Any, input_key: str, output_prefix: str) -> None:
    s3.put_object(Bucket=BUCKET, Key=input_key, Body=b"id,x\n1,2\n")

    answer = start(input=f"s3://{BUCKET}/{input_key}", output=f"s3://{BUCKET}/{output_prefix}")

    assert answer["error"].startswith(f"output: the job writes under s3://{BUCKET}/{output_prefix}, which holds")


def test_an_output_prefix_beside_the_input_in_the_same_bucket_is_accepted(s3: Any) -> None:
    s3.put_object(Bucket=BUCKET, Key="in/rows.csv", Body=b"id,x\n1,2\n")

    answer = start(input=f"s3://{BUCKET}/in/rows.csv", output=f"s3://{BUCKET}/out/")

    assert "error" not in answer
    assert answer["batch"]["id_column"] == "id"


@pytest.mark.parametrize("column", ["row", "prediction", "error"])
def test_an_id_column_the_job_writes_itself_is_refused(s3: Any, column: str) -> None:
    s3.put_object(Bucket=BUCKET, Key="in/rows.csv", Body=f"{column},x\n1,2\n".encode())

    answer = start(input=f"s3://{BUCKET}/in/rows.csv", output=f"s3://{BUCKET}/out/", id_column=column)

    assert answer["error"] == (
        f'id_column: "{column}" is a column the job writes (row, prediction, error); '
        "name the column that holds your ids"
    )


@pytest.mark.parametrize(
    ("body", "kind", "request_id", "key"),
    [
        (b"id,x\n1,2\n", "csv", None, "id"),
        (b"\xef\xbb\xbfid,x\n1,2\n", "csv", None, "id"),  # Excel's "CSV UTF-8": a byte-order mark
        (b"x,y\n1,2\n", "csv", None, None),
        (b"customer,x\n1,2\n", "csv", "customer", "customer"),
        (b'\n{"id": 7, "x": 1}\n{"x": 2}\n', "jsonl", None, "id"),
        (b'{"x": 1}\n{"id": 7, "x": 2}\n', "jsonl", None, None),
        (b"not json\n", "jsonl", None, None),
    ],
)
def test_every_line_is_keyed_as_the_first_record_says(
    s3: Any, body: bytes, kind: str, request_id: str | None, key: str | None
) -> None:
    s3.put_object(Bucket=BUCKET, Key=f"in/rows.{kind}", Body=body)
    options = {"id_column": request_id} if request_id else {}

    answer = start(input=f"s3://{BUCKET}/in/rows.{kind}", output=f"s3://{BUCKET}/out/", **options)

    assert answer["batch"]["id_column"] == key


def test_an_id_column_named_by_the_request_must_be_in_the_input(s3: Any) -> None:
    s3.put_object(Bucket=BUCKET, Key="in/rows.csv", Body=b"id,x\n1,2\n")

    answer = start(input=f"s3://{BUCKET}/in/rows.csv", output=f"s3://{BUCKET}/out/", id_column="customer")

    assert (
        answer["error"] == 'id_column: the input\'s first record has no column "customer"; its columns are ["id", "x"]'
    )


def test_an_input_that_does_not_exist_is_refused_before_the_map_runs(s3: Any) -> None:
    answer = start(input=f"s3://{BUCKET}/in/gone.csv", output=f"s3://{BUCKET}/out/")

    assert answer == {"error": f"input: s3://{BUCKET}/in/gone.csv cannot be read (NoSuchKey)"}

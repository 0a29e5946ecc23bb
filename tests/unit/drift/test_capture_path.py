"""The capture path offline on moto: the function's log lines through a subscription filter to
Firehose into S3, read back by capture_objects.py, and the scheduled drift function over them."""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pytest
from moto import mock_aws
from sklearn.datasets import load_iris

import scheduled
from build.publish import publish
from capture_objects import CaptureReadError, collect, hour_prefixes, local_objects, parse_object, s3_objects
from serving.capture import FILTER_PATTERN, Capture
from serving.config import S3_PIN
from serving.errors import ModelLoadError
from serving.manifest import Manifest
from tests.cloudformation import source_template
from tests.filter_pattern import matches

REGION = "us-east-1"
LOG_GROUP = "/aws/lambda/predict"
BUCKET = "capture-bucket"
PREFIX = source_template()["Resources"]["CaptureDeliveryStream"]["Properties"]["ExtendedS3DestinationConfiguration"][
    "Prefix"
]


@pytest.fixture
def manifest(training_dir: Path) -> Manifest:
    return Manifest.model_validate_json((training_dir / "manifest.json").read_bytes())


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """moto's logs, Firehose and S3 wired as template.yaml wires them."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET)
        firehose = boto3.client("firehose", region_name=REGION)
        stream = firehose.create_delivery_stream(
            DeliveryStreamName="capture",
            DeliveryStreamType="DirectPut",
            ExtendedS3DestinationConfiguration={
                "RoleARN": "arn:aws:iam::123456789012:role/firehose",
                "BucketARN": f"arn:aws:s3:::{BUCKET}",
                "Prefix": PREFIX,
                "CompressionFormat": "GZIP",
            },
        )
        logs = boto3.client("logs", region_name=REGION)
        logs.create_log_group(logGroupName=LOG_GROUP)
        logs.create_log_stream(logGroupName=LOG_GROUP, logStreamName="instance")
        logs.put_subscription_filter(
            logGroupName=LOG_GROUP,
            filterName="capture",
            filterPattern=FILTER_PATTERN,
            destinationArn=stream["DeliveryStreamARN"],
            roleArn="arn:aws:iam::123456789012:role/logs",
        )
        yield {"s3": s3, "logs": logs}


def captured_lines(manifest: Manifest, rows: np.ndarray) -> list[str]:
    stream = io.StringIO()
    capture = Capture(manifest, 100, stream)
    for row in rows:
        capture.write(row[None, :], [1], None)
    return stream.getvalue().splitlines()


def deliver(logs: Any, lines: list[str]) -> None:
    """What the subscription filter passes on (moto delivers every event: the pattern is applied here)."""
    now = int(datetime.now(UTC).timestamp() * 1000)
    events = [{"timestamp": now, "message": line} for line in lines if matches(FILTER_PATTERN, line)]
    logs.put_log_events(logGroupName=LOG_GROUP, logStreamName="instance", logEvents=events)


def iris_rows(generator: np.random.Generator, count: int, shift: float = 0.0) -> np.ndarray:
    """Iris rows drawn with replacement (traffic like the training rows), petal_length moved by `shift`."""
    rows = load_iris().data[generator.integers(0, 150, count)].copy()
    rows[:, 2] += shift
    return np.round(rows, 1)


def test_captured_requests_reach_s3_by_the_hour_and_read_back_as_the_model_saw_them(
    aws: dict[str, Any], manifest: Manifest
) -> None:
    rows = iris_rows(np.random.default_rng(1), 20)
    powertools_line = json.dumps({"level": "INFO", "message": "model loaded", "service": "iris-predict"})
    deliver(aws["logs"], [powertools_line, *captured_lines(manifest, rows)])

    keys = [item["Key"] for item in aws["s3"].list_objects_v2(Bucket=BUCKET)["Contents"]]
    hour = datetime.now(UTC).strftime("%Y/%m/%d/%H/")
    assert keys
    assert all(key.startswith(PREFIX + hour) for key in keys)

    end = datetime.now(UTC) + timedelta(minutes=1)
    captured = collect(
        s3_objects(aws["s3"], BUCKET, PREFIX, end - timedelta(hours=1), end), manifest, end - timedelta(hours=1), end
    )
    assert captured.records == 20
    assert captured.columns["petal_length"] == rows[:, 2].tolist()
    assert captured.predictions == [1] * 20


def test_firehose_message_extraction_output_reads_the_same_as_the_envelope(manifest: Manifest) -> None:
    lines = captured_lines(manifest, iris_rows(np.random.default_rng(2), 5))
    envelope = {
        "messageType": "DATA_MESSAGE",
        "logEvents": [{"id": str(i), "message": line} for i, line in enumerate(lines)],
    }
    control = {"messageType": "CONTROL_MESSAGE", "logEvents": [{"id": "0", "message": "CWL CONTROL MESSAGE"}]}
    as_moto_writes = gzip.compress((json.dumps(control) + json.dumps(envelope)).encode())
    as_firehose_writes = gzip.compress(("\n".join(lines) + "\n\n").encode())
    assert list(parse_object(as_moto_writes, "a")) == list(parse_object(as_firehose_writes, "b"))
    assert len(list(parse_object(as_firehose_writes, "b"))) == 5


def test_an_object_that_is_neither_is_refused_with_its_name() -> None:
    with pytest.raises(CaptureReadError, match=r"^s3://b/k: expected JSON lines or CloudWatch Logs envelopes"):
        list(parse_object(b"not json", "s3://b/k"))


def test_records_outside_the_range_or_of_another_version_are_left_out(tmp_path: Path, manifest: Manifest) -> None:
    [line] = captured_lines(manifest, iris_rows(np.random.default_rng(3), 1))
    record = json.loads(line)
    other = {**record, "version": "000000000000"}
    (tmp_path / "2026").mkdir()
    (tmp_path / "2026" / "capture.gz").write_bytes(gzip.compress(f"{line}\n{json.dumps(other)}\n".encode()))
    now = datetime.now(UTC)
    inside = collect(local_objects(tmp_path), manifest, now - timedelta(hours=1), now + timedelta(hours=1))
    assert (inside.records, dict(inside.other_models)) == (1, {f"{manifest.name}:000000000000": 1})
    before = collect(local_objects(tmp_path), manifest, now - timedelta(hours=3), now - timedelta(hours=2))
    assert before.records == 0


def test_the_hour_folders_of_a_range_start_an_hour_early() -> None:
    start = datetime(2026, 12, 7, 10, 30, tzinfo=UTC)
    assert hour_prefixes("captures/", start, start + timedelta(hours=1)) == [
        "captures/2026/12/07/09/",
        "captures/2026/12/07/10/",
        "captures/2026/12/07/11/",
    ]


@pytest.fixture
def drift_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    variables = source_template()["Resources"]["DriftFunction"]["Properties"]["Environment"]["Variables"]
    monkeypatch.setenv("CAPTURE_BUCKET", BUCKET)
    monkeypatch.setenv("CAPTURE_PREFIX", variables["CAPTURE_PREFIX"])
    monkeypatch.setenv("DRIFT_PERIOD_HOURS", "24")
    monkeypatch.setenv("METRICS_NAMESPACE", "IrisPrediction")
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "stack-DriftFunction")


def emf_documents(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.startswith('{"_aws"')]


@pytest.mark.usefixtures("drift_environment")
@pytest.mark.parametrize("shift", [0.0, 2.5])
def test_the_scheduled_function_publishes_each_score_as_a_metric(
    aws: dict[str, Any], manifest: Manifest, capsys: pytest.CaptureFixture[str], shift: float
) -> None:
    deliver(aws["logs"], captured_lines(manifest, iris_rows(np.random.default_rng(4), 300, shift)))
    capsys.readouterr()

    summary = scheduled.run(aws["s3"], manifest, datetime.now(UTC) + timedelta(minutes=1))

    documents = emf_documents(capsys.readouterr().out)
    by_feature = {document["Feature"]: document for document in documents if "Feature" in document}
    assert set(by_feature) == set(manifest.feature_names)
    [model] = [document for document in documents if "Feature" not in document]
    assert model["FunctionName"] == "stack-DriftFunction"
    assert model["CapturedRows"] == 300 == summary["rows"]
    assert model["MaxPSI"] == max(
        document["PSI"] for document in [*by_feature.values(), {"PSI": model["PredictionPSI"]}]
    )
    for document in documents:
        [directive] = document["_aws"]["CloudWatchMetrics"]
        assert directive["Namespace"] == "IrisPrediction"
        assert all(metric["Name"] in document for metric in directive["Metrics"])
    petal_length = by_feature["petal_length"]["PSI"]
    assert (petal_length > 0.2) == (shift > 0)


def test_the_scheduled_function_reads_nothing_but_the_capture_bucket_and_the_served_model_bundle() -> None:
    properties = source_template()["Resources"]["DriftFunction"]["Properties"]
    [policy, model_bundle] = properties["Policies"]
    actions = sorted(statement["Action"] for statement in policy["Statement"])
    assert actions == ["s3:GetObject", "s3:ListBucket"]
    resources = [json.dumps(statement["Resource"]) for statement in policy["Statement"]]
    assert all("CaptureBucket" in resource for resource in resources)
    condition, granted, otherwise = model_bundle["Fn::If"]
    assert condition == "UseS3Model"
    assert otherwise == {"Ref": "AWS::NoValue"}
    [statement] = granted["Statement"]
    assert statement["Action"] == "s3:GetObjectVersion"
    assert statement["Resource"] == {"Fn::Sub": "arn:${AWS::Partition}:s3:::${ModelBucket}/${ModelKey}"}


def test_the_scheduled_function_has_the_prediction_functions_model_pin() -> None:
    resources = source_template()["Resources"]
    predict = resources["PredictFunction"]["Properties"]["Environment"]["Variables"]
    drift = resources["DriftFunction"]["Properties"]["Environment"]["Variables"]
    pin = [variable for _, variable, _ in S3_PIN]
    assert {name: drift[name] for name in pin} == {name: predict[name] for name in pin}


@pytest.mark.usefixtures("drift_environment")
def test_a_model_served_from_model_bucket_is_scored_against_its_own_profile(
    aws: dict[str, Any],
    manifest: Manifest,
    tiny_model_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The packaged manifest is the built model's; the stack serves another version from S3."""
    aws["s3"].create_bucket(Bucket="models")
    aws["s3"].put_bucket_versioning(Bucket="models", VersioningConfiguration={"Status": "Enabled"})
    pinned = publish(aws["s3"], "models", "iris/model.zip", tiny_model_dir)
    for field, variable, _ in S3_PIN:
        monkeypatch.setenv(variable, getattr(pinned, field))
    served = Manifest.model_validate_json((tiny_model_dir / "manifest.json").read_bytes())
    assert served.version != manifest.version
    generator = np.random.default_rng(5)
    deliver(aws["logs"], captured_lines(served, iris_rows(generator, 200)))
    deliver(aws["logs"], captured_lines(manifest, iris_rows(generator, 30)))  # before the deployment
    end = datetime.now(UTC) + timedelta(minutes=1)

    summary = scheduled.handler({"scheduled_time": end.isoformat()}, None)

    assert (summary["version"], summary["rows"]) == (served.version, 200)
    assert summary["other_models"] == {f"{manifest.name}:{manifest.version}": 30}
    [model] = [document for document in emf_documents(capsys.readouterr().out) if "Feature" not in document]
    assert model["CapturedRows"] == 200


@pytest.mark.usefixtures("drift_environment")
def test_a_model_bundle_that_is_not_the_pinned_one_stops_the_run(
    aws: dict[str, Any], tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    aws["s3"].create_bucket(Bucket="models")
    aws["s3"].put_bucket_versioning(Bucket="models", VersioningConfiguration={"Status": "Enabled"})
    pinned = publish(aws["s3"], "models", "iris/model.zip", tiny_model_dir)
    for field, variable, _ in S3_PIN:
        monkeypatch.setenv(variable, "0" * 64 if field == "sha256" else getattr(pinned, field))

    with pytest.raises(ModelLoadError, match="MODEL_SHA256 expects 0000"):
        scheduled.handler({}, None)


def test_the_scheduled_functions_package_manifest_must_have_a_profile(tmp_path: Path, manifest: Manifest) -> None:
    (tmp_path / "manifest.json").write_text(manifest.model_copy(update={"profile": None}).model_dump_json())
    with pytest.raises(scheduled.DriftConfigurationError, match="has no profile"):
        scheduled.load_manifest(tmp_path)

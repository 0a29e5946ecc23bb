"""template.yaml's capture and drift resources after the SAM transform: none with capture off,
all of them wired with it on (tests/unit/template/test_template.py lints them on too)."""

from __future__ import annotations

import json
from typing import Any

from tests.cloudformation import deployed

CAPTURE_ON = {"CaptureSamplePercent": "5"}
SCHEDULE_ON = {**CAPTURE_ON, "EnableDriftSchedule": "true"}
NOTIFY_ON = {**SCHEDULE_ON, "DriftNotifyEmail": "ml@example.com"}
CAPTURE_RESOURCES = {
    "CaptureBucket",
    "CaptureBucketPolicy",
    "CaptureDeliveryRole",
    "CaptureDeliveryStream",
    "CaptureLogsRole",
    "CaptureSubscriptionFilter",
    "CaptureDatabase",
    "CaptureTable",
}
SCHEDULE_RESOURCES = {"DriftFunction", "DriftFunctionRole", "DriftFunctionLogGroup", "DriftAlarm"}


def resources(parameters: dict[str, str]) -> dict[str, Any]:
    result, _ = deployed(parameters)
    return result


def test_capture_off_creates_none_of_its_resources_and_sets_no_variable() -> None:
    created = resources({"EnableDriftSchedule": "true"})
    assert not [name for name in created if name.startswith(("Capture", "Drift"))]
    variables = created["PredictFunction"]["Properties"]["Environment"]["Variables"]
    assert "CAPTURE_SAMPLE_PERCENT" not in variables


def test_capture_on_wires_the_log_group_to_firehose_to_an_encrypted_private_expiring_bucket() -> None:
    created = resources({**CAPTURE_ON, "CaptureRetentionDays": "14"})
    assert set(created) >= CAPTURE_RESOURCES
    assert not SCHEDULE_RESOURCES & set(created)
    assert created["PredictFunction"]["Properties"]["Environment"]["Variables"]["CAPTURE_SAMPLE_PERCENT"] == "5"
    bucket = created["CaptureBucket"]["Properties"]
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    assert bucket["LifecycleConfiguration"]["Rules"][0]["ExpirationInDays"] == "14"
    subscription = created["CaptureSubscriptionFilter"]["Properties"]
    assert subscription["LogGroupName"] == {"Ref": "PredictFunctionLogGroup"}
    assert subscription["DestinationArn"] == {"Fn::GetAtt": ["CaptureDeliveryStream", "Arn"]}
    destination = created["CaptureDeliveryStream"]["Properties"]["ExtendedS3DestinationConfiguration"]
    processors = [processor["Type"] for processor in destination["ProcessingConfiguration"]["Processors"]]
    assert processors[:2] == ["Decompression", "CloudWatchLogProcessing"]
    assert destination["CompressionFormat"] == "GZIP"
    assert destination["ErrorOutputPrefix"]
    table = created["CaptureTable"]["Properties"]["TableInput"]
    assert table["Parameters"]["projection.hour.format"] == "yyyy/MM/dd/HH"
    assert json.dumps(table["Parameters"]["storage.location.template"]).count(destination["Prefix"]) == 1


def test_the_drift_schedule_runs_its_function_and_alarms_on_the_threshold() -> None:
    created = resources({**SCHEDULE_ON, "DriftPsiThreshold": "0.3", "DriftPeriodHours": "6"})
    assert set(created) >= SCHEDULE_RESOURCES
    [schedule] = [resource for resource in created.values() if resource["Type"] == "AWS::Scheduler::Schedule"]
    assert schedule["Properties"]["ScheduleExpression"] == {"Fn::Sub": "rate(${DriftPeriodHours} hours)"}
    alarm = created["DriftAlarm"]["Properties"]
    assert alarm["Threshold"] == "0.3"
    assert "AlarmActions" not in alarm
    assert "DriftTopic" not in created


def test_an_email_adds_a_topic_the_alarm_notifies() -> None:
    created = resources(NOTIFY_ON)
    assert created["DriftAlarm"]["Properties"]["AlarmActions"] == [{"Ref": "DriftTopic"}]
    assert created["DriftTopic"]["Properties"]["Subscription"][0]["Endpoint"] == "ml@example.com"


def drift_role_statements(parameters: dict[str, str]) -> list[dict[str, Any]]:
    role = resources(parameters)["DriftFunctionRole"]["Properties"]
    [managed] = role["ManagedPolicyArns"]
    assert managed.endswith(":iam::aws:policy/service-role/AWSLambdaBasicExecutionRole")
    return [statement for policy in role["Policies"] for statement in policy["PolicyDocument"]["Statement"]]


def test_the_drift_role_may_read_the_capture_and_write_its_logs_only() -> None:
    statements = drift_role_statements(SCHEDULE_ON)
    assert sorted(statement["Action"] for statement in statements) == ["s3:GetObject", "s3:ListBucket"]


def test_with_a_model_from_model_bucket_the_drift_role_may_also_read_that_pinned_bundle() -> None:
    pinned = {"ModelBucket": "models", "ModelKey": "iris/model.zip", "ModelVersionId": "v1", "ModelSha256": "a" * 64}
    statements = drift_role_statements({**SCHEDULE_ON, **pinned})
    assert sorted(statement["Action"] for statement in statements) == [
        "s3:GetObject",
        "s3:GetObjectVersion",
        "s3:ListBucket",
    ]
    [bundle] = [statement for statement in statements if statement["Action"] == "s3:GetObjectVersion"]
    # The prediction function's own grant: exactly the pinned object (Fn::Sub of the two parameters).
    predict_role = resources({**SCHEDULE_ON, **pinned})["PredictFunctionRole"]["Properties"]
    assert bundle in [
        statement for policy in predict_role["Policies"] for statement in policy["PolicyDocument"]["Statement"]
    ]

"""template.yaml transformed to CloudFormation offline (the SAM translator), checked where it matters."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"


class NoManagedPolicies:
    """The translator asks IAM for managed policy ARNs; offline there are none to look up."""

    def load(self) -> dict[str, str]:
        return {}


@pytest.fixture(scope="module")
def resources() -> dict[str, Any]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        template = yaml_parse(TEMPLATE.read_text())
        template["Resources"]["PredictFunction"]["Properties"]["CodeUri"] = "s3://bucket/predict.zip"
        translated: dict[str, Any] = transform(template, {}, NoManagedPolicies())
    return translated["Resources"]


def test_function_runs_the_handler_on_python312(resources: dict[str, Any]) -> None:
    function = resources["PredictFunction"]["Properties"]

    assert function["Runtime"] == "python3.12"
    assert function["Handler"] == "app.handler"


def test_model_bucket_access_is_exactly_the_pinned_object_and_only_when_set(resources: dict[str, Any]) -> None:
    role = resources["PredictFunctionRole"]["Properties"]
    [policy] = role["Policies"]

    condition, when_set, otherwise = policy["Fn::If"]
    assert condition == "UseS3Model"
    assert otherwise == {"Ref": "AWS::NoValue"}
    [statement] = when_set["PolicyDocument"]["Statement"]
    assert statement == {
        "Effect": "Allow",
        "Action": "s3:GetObjectVersion",
        "Resource": {"Fn::Sub": "arn:${AWS::Partition}:s3:::${ModelBucket}/${ModelKey}"},
    }
    assert role["ManagedPolicyArns"] == ["arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"]


def test_s3_settings_reach_the_function_only_when_a_bucket_is_set(resources: dict[str, Any]) -> None:
    variables = resources["PredictFunction"]["Properties"]["Environment"]["Variables"]

    for name, parameter in {
        "MODEL_S3_BUCKET": "ModelBucket",
        "MODEL_S3_KEY": "ModelKey",
        "MODEL_S3_VERSION_ID": "ModelVersionId",
        "MODEL_SHA256": "ModelSha256",
    }.items():
        assert variables[name] == {"Fn::If": ["UseS3Model", {"Ref": parameter}, {"Ref": "AWS::NoValue"}]}

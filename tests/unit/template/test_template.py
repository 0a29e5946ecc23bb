"""template.yaml transformed to CloudFormation offline for several parameter combinations:
the resources and properties that matter, and cfn-lint on each result."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.cloudformation import BATCH_SCORING_PARAMETERS, deployed

BASIC_EXECUTION = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
XRAY = "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess"
COMBINATIONS = {
    "defaults": {},
    "tracing-arm64-iam-cors": {
        "TracingMode": "Active",
        "EnableSnapStart": "false",
        "Architecture": "arm64",
        "DeploymentType": "Linear10PercentEvery1Minute",
        "CorsAllowedOrigins": "https://app.example.com,https://admin.example.com",
        "AuthMode": "IAM",
        "ThrottlingRateLimit": "10",
        "ThrottlingBurstLimit": "5",
        "AlarmErrorRatePercent": "2",
        "AlarmMinRequests": "50",
    },
    "jwt": {"AuthMode": "JWT", "JwtIssuer": "https://issuer.example.com", "JwtAudience": "iris-api"},
    "batch-scoring": BATCH_SCORING_PARAMETERS,
    "s3-model": {
        "ModelBucket": "models",
        "ModelKey": "iris/model.zip",
        "ModelVersionId": "3HL4kqtJlcpXroDTDmJ",
        "ModelSha256": "a" * 64,
    },
}


@pytest.fixture(scope="module", params=sorted(COMBINATIONS))
def stack(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any], dict[str, Any]]:
    resources, template = deployed(COMBINATIONS[request.param])
    return request.param, resources, template


def props(resources: dict[str, Any], name: str) -> dict[str, Any]:
    properties: dict[str, Any] = resources[name]["Properties"]
    return properties


def test_cfn_lint_passes_on_the_transformed_template(
    stack: tuple[str, dict[str, Any], dict[str, Any]], tmp_path: Path
) -> None:
    name, _, template = stack
    path = tmp_path / "template.json"
    path.write_text(json.dumps(template))
    values = [f"{key}={value}" for key, value in COMBINATIONS[name].items()]
    # W2001 (parameter not used): SAM inlines the parameters it resolves itself (DeploymentType)
    # into its output, which still declares them.
    command = [str(Path(sys.executable).parent / "cfn-lint"), "--format", "parseable", "--ignore-checks", "W2001"]
    if values:
        command += ["--parameters", *values]

    result = subprocess.run([*command, "--", str(path)], capture_output=True, text=True)

    assert result.returncode == 0, result.stdout + result.stderr


def test_traffic_shifts_through_the_live_alias_with_alarms_and_a_hook(
    stack: tuple[str, dict[str, Any], dict[str, Any]],
) -> None:
    name, resources, _ = stack
    alias = resources["PredictFunctionAliaslive"]
    group = props(resources, "PredictFunctionDeploymentGroup")
    expected_type = COMBINATIONS[name].get("DeploymentType", "Canary10Percent5Minutes")

    assert alias["Properties"]["Name"] == "live"
    assert alias["UpdatePolicy"]["CodeDeployLambdaAliasUpdate"]["BeforeAllowTrafficHook"] == {
        "Ref": "PreTrafficHookFunction"
    }
    assert group["DeploymentConfigName"] == {
        "Fn::Sub": ["CodeDeployDefault.Lambda${ConfigName}", {"ConfigName": expected_type}]
    }
    assert group["AlarmConfiguration"]["Alarms"] == [
        {"Name": {"Ref": "FunctionErrorsAlarm"}},
        {"Name": {"Ref": "Api5xxAlarm"}},
    ]
    assert "DEPLOYMENT_STOP_ON_ALARM" in group["AutoRollbackConfiguration"]["Events"]
    assert props(resources, "PredictIntegration")["IntegrationUri"]["Fn::Sub"].endswith(
        "/functions/${PredictFunction.Arn}:live/invocations"
    )
    assert props(resources, "PredictApiInvokePermission")["FunctionName"] == {"Ref": "PredictFunctionAliaslive"}
    assert props(resources, "PreTrafficHookFunction")["FunctionName"]["Fn::Sub"].startswith("CodeDeployHook_")


def test_snapstart_architecture_and_tracing_follow_the_parameters(
    stack: tuple[str, dict[str, Any], dict[str, Any]],
) -> None:
    name, resources, _ = stack
    parameters = COMBINATIONS[name]
    function = props(resources, "PredictFunction")
    tracing = parameters.get("TracingMode") == "Active"

    assert function["SnapStart"] == {
        "ApplyOn": "None" if parameters.get("EnableSnapStart") == "false" else "PublishedVersions"
    }
    assert function["Architectures"] == [parameters.get("Architecture", "x86_64")]
    assert function["Environment"]["Variables"]["POWERTOOLS_TRACE_DISABLED"] == ("false" if tracing else "true")
    assert ("TracingConfig" in function) is tracing
    assert props(resources, "PredictFunctionRole")["ManagedPolicyArns"] == (
        [BASIC_EXECUTION, XRAY] if tracing else [BASIC_EXECUTION]
    )


def test_throttling_cors_and_auth_follow_the_parameters(stack: tuple[str, dict[str, Any], dict[str, Any]]) -> None:
    name, resources, _ = stack
    parameters = COMBINATIONS[name]
    mode = parameters.get("AuthMode", "NONE")
    [route_name] = [name for name in ("PredictRoute", "PredictJwtRoute") if name in resources]
    route = props(resources, route_name)
    settings = props(resources, "PredictStage")["DefaultRouteSettings"]
    api = props(resources, "PredictApi")

    assert settings["ThrottlingRateLimit"] == parameters.get("ThrottlingRateLimit", "100")
    assert settings["ThrottlingBurstLimit"] == parameters.get("ThrottlingBurstLimit", "50")
    if "CorsAllowedOrigins" in parameters:
        assert api["CorsConfiguration"]["AllowOrigins"] == {"Fn::Split": [",", parameters["CorsAllowedOrigins"]]}
    else:
        assert "CorsConfiguration" not in api
    assert route["RouteKey"] == "$default"
    assert route_name == ("PredictJwtRoute" if mode == "JWT" else "PredictRoute")
    assert route["AuthorizationType"] == {"NONE": "NONE", "IAM": "AWS_IAM", "JWT": "JWT"}[mode]
    assert ("JwtAuthorizer" in resources) is (mode == "JWT")
    if mode == "JWT":
        assert route["AuthorizerId"] == {"Ref": "JwtAuthorizer"}
        assert props(resources, "JwtAuthorizer")["JwtConfiguration"]["Issuer"] == parameters["JwtIssuer"]
    else:
        assert "AuthorizerId" not in route


def test_the_function_role_grants_only_what_is_used(stack: tuple[str, dict[str, Any], dict[str, Any]]) -> None:
    name, resources, _ = stack
    role = props(resources, "PredictFunctionRole")
    variables = props(resources, "PredictFunction")["Environment"]["Variables"]

    if name == "s3-model":
        [policy] = role["Policies"]
        assert policy["PolicyDocument"]["Statement"] == [
            {
                "Effect": "Allow",
                "Action": "s3:GetObjectVersion",
                "Resource": {"Fn::Sub": "arn:${AWS::Partition}:s3:::${ModelBucket}/${ModelKey}"},
            }
        ]
        assert variables["MODEL_S3_BUCKET"] == "models"
        assert variables["MODEL_S3_VERSION_ID"] == "3HL4kqtJlcpXroDTDmJ"
    else:
        assert role.get("Policies", []) == []
        assert not any(key.startswith("MODEL_S3") for key in variables)


def test_the_hook_may_invoke_only_versions_of_the_function(stack: tuple[str, dict[str, Any], dict[str, Any]]) -> None:
    _, resources, _ = stack
    [policy] = props(resources, "PreTrafficHookFunctionRole")["Policies"]

    actions = {statement["Action"]: statement["Resource"] for statement in policy["PolicyDocument"]["Statement"]}
    assert actions["lambda:InvokeFunction"] == {"Fn::Sub": "${PredictFunction.Arn}:*"}
    assert set(actions) == {"lambda:InvokeFunction", "codedeploy:PutLifecycleEventHookExecutionStatus"}


# SAM CLI parses templates with deprecated APIs of its own dependencies; this test only reads routes.
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_sam_local_start_api_routes_every_path_to_the_function() -> None:
    from samcli.lib.providers.api_provider import ApiProvider
    from samcli.lib.providers.sam_stack_provider import SamLocalStackProvider

    from tests.cloudformation import TEMPLATE

    stacks, _ = SamLocalStackProvider.get_stacks(str(TEMPLATE))
    [route] = ApiProvider(stacks).api.routes

    assert route.function_name == "PredictFunction"
    assert route.path == "$default"
    assert route.payload_format_version == "2.0"


def alarm_metrics(resources: dict[str, Any], alarm: str) -> dict[str, dict[str, Any]]:
    properties = props(resources, alarm)
    # Metric math only: CloudFormation refuses MetricName or Statistic beside Metrics.
    assert not {"MetricName", "Namespace", "Statistic", "Dimensions"} & set(properties)
    return {metric["Id"]: metric for metric in properties["Metrics"]}


def test_rollback_alarms_watch_an_error_rate_over_enough_requests(
    stack: tuple[str, dict[str, Any], dict[str, Any]],
) -> None:
    name, resources, template = stack
    values = {key: str(spec["Default"]) for key, spec in template["Parameters"].items() if "Default" in spec}
    values.update(COMBINATIONS[name])
    alias = props(resources, "PredictFunctionAliaslive")["Name"]
    function = [
        {"Name": "FunctionName", "Value": {"Ref": "PredictFunction"}},
        {"Name": "Resource", "Value": {"Fn::Sub": "${PredictFunction}:" + alias}},
    ]
    api = [{"Name": "ApiId", "Value": {"Ref": "PredictApi"}}, {"Name": "Stage", "Value": "$default"}]
    watched = {
        "FunctionErrorsAlarm": ("AWS/Lambda", function, {"errors": "Errors", "invocations": "Invocations"}),
        "Api5xxAlarm": ("AWS/ApiGateway", api, {"errors": "5xx", "requests": "Count"}),
    }

    for alarm, (namespace, dimensions, inputs) in watched.items():
        metrics = alarm_metrics(resources, alarm)
        [total] = set(inputs) - {"errors"}
        assert set(metrics) == {*inputs, "error_rate"}
        for metric_id, metric_name in inputs.items():
            assert metrics[metric_id]["MetricStat"] == {
                "Metric": {"Namespace": namespace, "MetricName": metric_name, "Dimensions": dimensions},
                "Period": 60,
                "Stat": "Sum",
            }
            assert metrics[metric_id]["ReturnData"] is False
        rate = metrics["error_rate"]
        assert rate["ReturnData"] is True
        expression = rate["Expression"]["Fn::Sub"].replace("${AlarmMinRequests}", values["AlarmMinRequests"])
        assert expression == f"IF({total} >= {values['AlarmMinRequests']}, 100 * FILL(errors, 0) / {total}, 0)"
        properties = props(resources, alarm)
        assert properties["Threshold"] == values["AlarmErrorRatePercent"]
        assert properties["ComparisonOperator"] == "GreaterThanThreshold"
        assert (properties["EvaluationPeriods"], properties["DatapointsToAlarm"]) == (3, 2)
        assert properties["TreatMissingData"] == "notBreaching"


def test_one_failed_request_cannot_trip_the_default_alarms() -> None:
    _, template = deployed()
    defaults = {
        name: float(spec["Default"])
        for name, spec in template["Parameters"].items()
        if "Default" in spec and name.startswith("Alarm")
    }

    # The worst single request: one error in a minute with just enough requests to count.
    assert 100 * 1 / defaults["AlarmMinRequests"] <= defaults["AlarmErrorRatePercent"]

"""template.yaml transformed to CloudFormation offline for several parameter combinations:
the resources and properties that matter, and cfn-lint on each result (with capture, schedule and
topic on too: tests/unit/template/test_capture_template.py tests what they create)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest

from tests.cloudformation import BATCH_SCORING_PARAMETERS, deployed, lint_findings, rule_violations, source_template
from tests.unit.template.test_capture_template import NOTIFY_ON

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
    "capture-drift-notify": NOTIFY_ON,
}


@pytest.fixture(scope="module")
def stacks() -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    return {name: deployed(parameters) for name, parameters in COMBINATIONS.items()}


@pytest.fixture(params=sorted(COMBINATIONS))
def stack(
    request: pytest.FixtureRequest, stacks: dict[str, tuple[dict[str, Any], dict[str, Any]]]
) -> tuple[str, dict[str, Any], dict[str, Any]]:
    resources, template = stacks[request.param]
    return request.param, resources, template


def props(resources: dict[str, Any], name: str) -> dict[str, Any]:
    properties: dict[str, Any] = resources[name]["Properties"]
    return properties


@pytest.mark.slow
def test_cfn_lint_passes_on_the_transformed_template_of_every_combination(
    stacks: dict[str, tuple[dict[str, Any], dict[str, Any]]],
) -> None:
    """One cfn-lint pass a distinct transformed template (about 3 s each; SAM inlines only a few
    parameters, so most combinations give the same one), with each combination that gives it as
    a parameter set. `sam validate --lint` (make test) lints it with every allowed value."""
    combinations_of: dict[str, list[str]] = {}
    for name, (_, template) in stacks.items():
        combinations_of.setdefault(json.dumps(template, sort_keys=True), []).append(name)

    findings = {
        ", ".join(names): lint_findings(json.loads(template), [COMBINATIONS[name] for name in names])
        for template, names in combinations_of.items()
    }
    assert {names: found for names, found in findings.items() if found} == {}


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


# Template guards as checks that run on any template after the SAM transform: each passes on template.yaml and fails
# on a copy with that guard removed or widened. What they hold: the pre-traffic hook may only invoke versions or
# aliases of the prediction function and only report to this stack's CodeDeploy application; a model in S3 is refused
# unless pinned by version and checksum (the template's Rules); the rollback alarms watch the `live` alias and the API
# the template creates.


# The alias traffic shifts through, as the README and docs/operations.md name it.
LIVE_ALIAS = "live"
# What each action the hook needs may be granted on: versions or aliases of the prediction
# function (a qualified ARN), and deployment groups of this stack's CodeDeploy application.
HOOK_SCOPES = {
    "lambda:InvokeFunction": re.compile(r"\$\{PredictFunction\.Arn\}:([^:*]+|\*)"),
    "codedeploy:PutLifecycleEventHookExecutionStatus": re.compile(
        r"arn:\$\{AWS::Partition\}:codedeploy:\$\{AWS::Region\}:\$\{AWS::AccountId\}:"
        r"deploymentgroup:\$\{ServerlessDeploymentApplication\}/.+"
    ),
}
PINNED_S3_MODEL = {
    "ModelBucket": "models",
    "ModelKey": "iris/model.zip",
    "ModelVersionId": "v1",
    "ModelSha256": "a" * 64,
}

Resources = dict[str, Any]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def sub_text(value: Any) -> str:
    """The text of a `!Sub` or a literal string; anything else as its repr (never matches a scope)."""
    if isinstance(value, dict) and set(value) == {"Fn::Sub"} and isinstance(value["Fn::Sub"], str):
        return str(value["Fn::Sub"])
    return value if isinstance(value, str) else repr(value)


def hook_grant_problems(resources: Resources) -> list[str]:
    """How the pre-traffic hook's role grants more (or other) than HOOK_SCOPES."""
    role = resources["PreTrafficHookFunctionRole"]["Properties"]
    problems = []
    if role.get("ManagedPolicyArns") != [BASIC_EXECUTION]:
        problems.append(f"managed policies {role.get('ManagedPolicyArns')}: expected only {BASIC_EXECUTION}")
    granted = set()
    for policy in role.get("Policies", []):
        for statement in as_list(policy["PolicyDocument"]["Statement"]):
            if statement["Effect"] != "Allow":
                continue
            for action in as_list(statement["Action"]):
                granted.add(action)
                scope = HOOK_SCOPES.get(action)
                if scope is None:
                    problems.append(f"grants {action}, which the hook does not need")
                    continue
                problems += [
                    f"grants {action} on {sub_text(resource)}, wider than {scope.pattern}"
                    for resource in as_list(statement["Resource"])
                    if not scope.fullmatch(sub_text(resource))
                ]
    problems += [f"does not grant {action}" for action in sorted(set(HOOK_SCOPES) - granted)]
    return problems


def s3_pin_problems(template: dict[str, Any]) -> list[str]:
    """How the template's Rules fail to refuse a model in S3 that is not pinned by version and checksum."""
    problems = []
    if rule_violations(template, PINNED_S3_MODEL):
        problems.append(f"a pinned model in S3 is refused: {rule_violations(template, PINNED_S3_MODEL)}")
    if rule_violations(template, {}):
        problems.append(f"the baked model is refused: {rule_violations(template, {})}")
    problems += [
        f"a model in S3 without {missing} is accepted"
        for missing in ("ModelVersionId", "ModelSha256")
        if not rule_violations(template, {**PINNED_S3_MODEL, missing: ""})
    ]
    return problems


def watched_metrics(resources: Resources, alarm: str) -> list[dict[str, Any]]:
    return [
        metric["MetricStat"]["Metric"] for metric in resources[alarm]["Properties"]["Metrics"] if "MetricStat" in metric
    ]


def alarm_problems(resources: Resources) -> list[str]:
    """How the rollback alarms fail to watch the live alias's errors and the API's 5xx."""
    stage = resources["PredictStage"]["Properties"]["StageName"]
    expected = {
        "FunctionErrorsAlarm": (
            "AWS/Lambda",
            {"Errors", "Invocations"},
            [
                {"Name": "FunctionName", "Value": {"Ref": "PredictFunction"}},
                {"Name": "Resource", "Value": {"Fn::Sub": "${PredictFunction}:" + LIVE_ALIAS}},
            ],
        ),
        "Api5xxAlarm": (
            "AWS/ApiGateway",
            {"5xx", "Count"},
            [{"Name": "ApiId", "Value": {"Ref": "PredictApi"}}, {"Name": "Stage", "Value": stage}],
        ),
    }
    problems = []
    for alarm, (namespace, names, dimensions) in expected.items():
        metrics = watched_metrics(resources, alarm)
        if {metric["MetricName"] for metric in metrics} != names:
            problems.append(f"{alarm} watches {[metric['MetricName'] for metric in metrics]}, expected {sorted(names)}")
        problems += [
            f"{alarm}: {metric['MetricName']} in {metric['Namespace']} with {metric.get('Dimensions')}, "
            f"expected {namespace} with {dimensions}"
            for metric in metrics
            if metric["Namespace"] != namespace or metric.get("Dimensions") != dimensions
        ]
    group_alarms = resources["PredictFunctionDeploymentGroup"]["Properties"]["AlarmConfiguration"]["Alarms"]
    if group_alarms != [{"Name": {"Ref": alarm}} for alarm in expected]:
        problems.append(f"the deployment group rolls back on {group_alarms}, expected {sorted(expected)}")
    return problems


def test_template_yaml_passes_every_guard() -> None:
    resources, template = deployed()

    assert hook_grant_problems(resources) == []
    assert s3_pin_problems(template) == []
    assert alarm_problems(resources) == []


def hook_statement(template: dict[str, Any], action: str) -> dict[str, Any]:
    statements = template["Resources"]["PreTrafficHookFunction"]["Properties"]["Policies"][0]["Statement"]
    [statement] = [statement for statement in statements if statement["Action"] == action]
    return dict(statement)


def set_hook_statement(template: dict[str, Any], action: str, **changes: Any) -> None:
    statement = hook_statement(template, action)
    statement.update(changes)
    statements = template["Resources"]["PreTrafficHookFunction"]["Properties"]["Policies"][0]["Statement"]
    statements[:] = [statement if s["Action"] == action else s for s in statements]


def alarm_dimensions(template: dict[str, Any], alarm: str) -> list[list[dict[str, Any]]]:
    metrics = template["Resources"][alarm]["Properties"]["Metrics"]
    return [metric["MetricStat"]["Metric"]["Dimensions"] for metric in metrics if "MetricStat" in metric]


def invoke_anything(template: dict[str, Any]) -> None:
    set_hook_statement(template, "lambda:InvokeFunction", Resource="*")


def invoke_the_unqualified_function(template: dict[str, Any]) -> None:
    set_hook_statement(template, "lambda:InvokeFunction", Resource={"Fn::GetAtt": ["PredictFunction", "Arn"]})


def every_lambda_action(template: dict[str, Any]) -> None:
    set_hook_statement(template, "lambda:InvokeFunction", Action="lambda:*")


def report_to_any_deployment(template: dict[str, Any]) -> None:
    set_hook_statement(template, "codedeploy:PutLifecycleEventHookExecutionStatus", Resource="*")


def report_to_any_application(template: dict[str, Any]) -> None:
    set_hook_statement(
        template,
        "codedeploy:PutLifecycleEventHookExecutionStatus",
        Resource={"Fn::Sub": "arn:${AWS::Partition}:codedeploy:${AWS::Region}:${AWS::AccountId}:deploymentgroup:*"},
    )


def no_s3_pin_rule(template: dict[str, Any]) -> None:
    del template["Rules"]["S3ModelIsPinned"]


def no_checksum_assertion(template: dict[str, Any]) -> None:
    assertions = template["Rules"]["S3ModelIsPinned"]["Assertions"]
    assertions[:] = [a for a in assertions if "ModelSha256" not in str(a["Assert"])]


def errors_alarm_on_every_version(template: dict[str, Any]) -> None:
    for dimensions in alarm_dimensions(template, "FunctionErrorsAlarm"):
        dimensions[:] = [d for d in dimensions if d["Name"] != "Resource"]


def errors_alarm_on_latest(template: dict[str, Any]) -> None:
    for dimensions in alarm_dimensions(template, "FunctionErrorsAlarm"):
        for dimension in dimensions:
            if dimension["Name"] == "Resource":
                dimension["Value"] = {"Fn::Sub": "${PredictFunction}:$LATEST"}


def api_alarm_on_another_api(template: dict[str, Any]) -> None:
    for dimensions in alarm_dimensions(template, "Api5xxAlarm"):
        dimensions[0] = {"Name": "ApiId", "Value": "someotherapi"}


def api_alarm_counting_4xx(template: dict[str, Any]) -> None:
    metric = template["Resources"]["Api5xxAlarm"]["Properties"]["Metrics"][0]["MetricStat"]["Metric"]
    metric["MetricName"] = "4xx"


def no_api_alarm_in_the_rollback(template: dict[str, Any]) -> None:
    preference = template["Resources"]["PredictFunction"]["Properties"]["DeploymentPreference"]
    preference["Alarms"] = [alarm for alarm in preference["Alarms"] if alarm != {"Ref": "Api5xxAlarm"}]


Check = Callable[[Resources, dict[str, Any]], list[str]]
CHECKS: dict[str, Check] = {
    "hook grants": lambda resources, _: hook_grant_problems(resources),
    "S3 pin": lambda _, template: s3_pin_problems(template),
    "alarms": lambda resources, _: alarm_problems(resources),
}
MUTATIONS = {
    invoke_anything: ("hook grants", "grants lambda:InvokeFunction on *"),
    invoke_the_unqualified_function: ("hook grants", "grants lambda:InvokeFunction on {'Fn::GetAtt'"),
    every_lambda_action: ("hook grants", "grants lambda:*, which the hook does not need"),
    report_to_any_deployment: ("hook grants", "grants codedeploy:PutLifecycleEventHookExecutionStatus on *"),
    report_to_any_application: ("hook grants", "deploymentgroup:*, wider than"),
    no_s3_pin_rule: ("S3 pin", "a model in S3 without ModelVersionId is accepted"),
    no_checksum_assertion: ("S3 pin", "a model in S3 without ModelSha256 is accepted"),
    errors_alarm_on_every_version: ("alarms", "FunctionErrorsAlarm: Errors in AWS/Lambda with"),
    errors_alarm_on_latest: ("alarms", "${PredictFunction}:$LATEST"),
    api_alarm_on_another_api: ("alarms", "someotherapi"),
    api_alarm_counting_4xx: ("alarms", "Api5xxAlarm watches ['4xx', 'Count']"),
    no_api_alarm_in_the_rollback: ("alarms", "the deployment group rolls back on"),
}


@pytest.mark.parametrize("mutation", MUTATIONS, ids=lambda mutation: mutation.__name__)
def test_each_guard_fails_on_a_template_without_it(mutation: Callable[[dict[str, Any]], None]) -> None:
    source = source_template()
    mutation(source)
    failing, message = MUTATIONS[mutation]

    resources, template = deployed({}, source)

    problems = {name: check(resources, template) for name, check in CHECKS.items()}
    assert any(message in problem for problem in problems[failing]), problems
    assert all(problems[name] == [] for name in CHECKS if name != failing)

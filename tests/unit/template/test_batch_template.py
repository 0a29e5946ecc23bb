"""template.yaml's batch job (EnableBatchScoring) after the SAM transform: present only when
asked for, its Distributed Map wired to what the start step (functions/batchjob) writes into the
state, every Lambda call retried, and each role scoped to exactly its buckets and functions.
cfn-lint runs on this parameter combination in test_template.py."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import boto3
import pytest
from moto import mock_aws

import batch_job
from build import PROJECT_ROOT
from local.lambda_runtime import LambdaContext
from tests.cloudformation import BATCH_SCORING_PARAMETERS, deployed, source_template

BATCH = BATCH_SCORING_PARAMETERS
S3_MODEL = {"ModelBucket": "models", "ModelKey": "iris/model.zip", "ModelVersionId": "v1", "ModelSha256": "a" * 64}
BATCH_RESOURCES = {
    "BatchScoringStateMachine",
    "BatchScoringStateMachineRole",
    "BatchStartFunction",
    "BatchStartFunctionRole",
    "BatchScoringFunction",
    "BatchScoringFunctionRole",
    "BatchFinishFunction",
    "BatchFinishFunctionRole",
    "BatchStartFunctionLogGroup",
    "BatchScoringFunctionLogGroup",
    "BatchFinishFunctionLogGroup",
}
MAPS = {"ScoreCsv": "CSV", "ScoreJsonLines": "JSONL"}
TRANSIENT_LAMBDA_ERRORS = {"Lambda.ServiceException", "Lambda.SdkClientException", "Lambda.TooManyRequestsException"}
BASIC_EXECUTION = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"


@pytest.fixture(scope="module")
def stack() -> tuple[dict[str, Any], dict[str, Any]]:
    return deployed(BATCH)


@pytest.fixture(scope="module")
def definition(stack: tuple[dict[str, Any], dict[str, Any]]) -> dict[str, Any]:
    """The state machine's definition, each substitution left as <its name>."""
    properties = stack[0]["BatchScoringStateMachine"]["Properties"]
    separator, lines = properties["DefinitionString"]["Fn::Join"]
    text = separator.join(lines)
    for name in properties["DefinitionSubstitutions"]:
        text = text.replace("${" + name + "}", f"<{name}>")
    assert "${" not in text, "a placeholder without a substitution"
    parsed: dict[str, Any] = json.loads(text)
    return parsed


def at(state: dict[str, Any], path: str) -> Any:
    """A JSONPath of plain names ($.a.b), as the definition uses them, evaluated on `state`."""
    assert path.startswith("$."), path
    value: Any = state
    for name in path[2:].split("."):
        value = value[name]
    return value


def choose(choice: dict[str, Any], state: dict[str, Any]) -> str:
    """The state a Choice of IsPresent and StringEquals rules goes to for `state`."""
    for rule in choice["Choices"]:
        try:
            value, present = at(state, rule["Variable"]), True
        except KeyError:
            value, present = None, False
        if rule.get("IsPresent") is present or (present and value == rule.get("StringEquals")):
            return str(rule["Next"])
    return str(choice["Default"])


def tasks(states: dict[str, Any]) -> dict[str, Any]:
    """Every Task state, the Map states' own (the per-batch ones) included."""
    found = {name: state for name, state in states.items() if state["Type"] == "Task"}
    for name, state in states.items():
        if state["Type"] == "Map":
            found |= {f"{name}/{inner}": task for inner, task in tasks(state["ItemProcessor"]["States"]).items()}
    return found


FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.fixture(scope="module")
def job_state(stack: tuple[dict[str, Any], dict[str, Any]]) -> Any:
    """What the deployed start step answers for a request, configured by its deployed environment."""
    variables = stack[0]["BatchStartFunction"]["Properties"]["Environment"]["Variables"]

    def answer(request: Any) -> dict[str, Any]:
        with pytest.MonkeyPatch.context() as patch, mock_aws():
            for name, value in {**variables, **FAKE_CREDENTIALS}.items():
                patch.setenv(name, str(value))
            # The start step reads the input's first record: an input with an id column.
            s3 = boto3.client("s3")
            s3.create_bucket(Bucket=str(variables["INPUT_BUCKET"]))
            key = str(request["input"]).removeprefix(f"s3://{variables['INPUT_BUCKET']}/")
            body = b'{"id": 1, "x": 2}\n' if key.endswith(".jsonl") else b"id,x\n1,2\n"
            s3.put_object(Bucket=str(variables["INPUT_BUCKET"]), Key=key, Body=body)
            return batch_job.start({"request": request, "execution": "run-1"}, LambdaContext())

    return answer


def test_the_default_deployment_has_no_batch_job() -> None:
    resources, template = deployed()

    assert not BATCH_RESOURCES & set(resources)
    conditions = {name: resource.get("Condition") for name, resource in template["Resources"].items()}
    assert {name for name, condition in conditions.items() if condition == "BatchScoringOn"} == BATCH_RESOURCES
    assert template["Outputs"]["BatchScoringStateMachineArn"]["Condition"] == "BatchScoringOn"


def test_enabled_it_adds_the_state_machine_and_three_functions(stack: tuple[dict[str, Any], dict[str, Any]]) -> None:
    resources, _ = stack
    source = source_template()["Resources"]

    assert set(resources) >= BATCH_RESOURCES
    assert resources["BatchScoringStateMachine"]["Properties"]["StateMachineType"] == "STANDARD"
    # The scoring function is the API's package with its second handler: same code, same build.
    scoring, api = source["BatchScoringFunction"], source["PredictFunction"]
    assert scoring["Properties"]["Handler"] == "batch.handler"
    assert (scoring["Properties"]["CodeUri"], scoring["Metadata"]) == (api["Properties"]["CodeUri"], api["Metadata"])
    assert {source[name]["Properties"]["Handler"] for name in ("BatchStartFunction", "BatchFinishFunction")} == {
        "batch_job.start",
        "batch_job.finish",
    }


def state_names(states: dict[str, Any]) -> list[str]:
    names = list(states)
    for state in states.values():
        if state["Type"] == "Map":
            names += state_names(state["ItemProcessor"]["States"])
    return names


def test_state_names_are_unique_across_the_maps_too(definition: dict[str, Any]) -> None:
    # Step Functions refuses a definition where a Map's inner state repeats any other state's name.
    names = state_names(definition["States"])

    assert len(names) == len(set(names))


# AWS's definition rules beyond the structure asserted here, from the npm package asl-validator
# (pinned in package-lock.json; make setup installs it).
ASL_VALIDATOR = PROJECT_ROOT / "node_modules" / ".bin" / "asl-validator"


def repeated_state_name(definition: dict[str, Any]) -> dict[str, Any]:
    """The mistake asl-validator caught while the job was written: a Map's inner state named like an outer one."""
    broken = json.loads(json.dumps(definition))
    csv_map = broken["States"]["ScoreCsv"]["ItemProcessor"]
    inner = csv_map["StartAt"]
    csv_map["States"]["ReadRequest"] = csv_map["States"].pop(inner)
    csv_map["StartAt"] = "ReadRequest"
    return broken


@pytest.fixture(scope="module")
def asl_problems(definition: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """asl-validator's complaints about the definition and a broken copy ('' where it accepts it), the
    functions' ARNs filled in: both in one run (node starts in about a second)."""
    directory = tmp_path_factory.mktemp("asl")
    paths = {}
    for name, checked in {"definition": definition, "repeated state name": repeated_state_name(definition)}.items():
        text = json.dumps(checked)
        for arn in ("StartFunctionArn", "ScoringFunctionArn", "FinishFunctionArn"):
            text = text.replace(f"<{arn}>", f"arn:aws:lambda:us-east-1:123456789012:function:{arn}")
        paths[name] = directory / f"{len(paths)}.asl.json"
        paths[name].write_text(text)
    arguments = [argument for path in paths.values() for argument in ("--json-path", str(path))]
    result = subprocess.run([str(ASL_VALIDATOR), *arguments], capture_output=True, text=True)
    # It names each file it accepts on a line of its own, and exits non-zero if it refused any.
    return {
        name: "" if f'"{path}" is valid' in result.stdout else result.stdout + result.stderr
        for name, path in paths.items()
    }


@pytest.mark.slow
def test_asl_validator_accepts_the_definition(asl_problems: dict[str, str]) -> None:
    assert asl_problems["definition"] == ""


@pytest.mark.slow
def test_asl_validator_refuses_a_repeated_state_name(asl_problems: dict[str, str]) -> None:
    assert asl_problems["repeated state name"] != ""


def test_each_map_is_distributed_over_the_input_file_in_batches(definition: dict[str, Any]) -> None:
    states = definition["States"]

    for name, input_type in MAPS.items():
        state = states[name]
        assert state["Type"] == "Map"
        assert state["ItemProcessor"]["ProcessorConfig"]["Mode"] == "DISTRIBUTED"
        reader = state["ItemReader"]
        assert reader["Resource"] == "arn:aws:states:::s3:getObject"
        assert reader["ReaderConfig"]["InputType"] == input_type
        assert reader["ReaderConfig"].get("CSVHeaderLocation") == ("FIRST_ROW" if input_type == "CSV" else None)
        assert state["ItemSelector"] == {"index.$": "$$.Map.Item.Index", "row.$": "$$.Map.Item.Value"}
        batcher = state["ItemBatcher"]
        assert batcher["BatchInput"]["text"] is (input_type == "CSV")
        assert batcher["MaxInputBytesPerBatch"] <= 256 * 1024
        assert state["ResultWriter"]["Resource"] == "arn:aws:states:::s3:putObject"
        # A failed Map Run still goes on to write the files (and the summary says it failed).
        assert state["Next"] == "WriteFiles"
        assert state["Catch"] == [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.map_error", "Next": "WriteFiles"}]
        [batch_task] = state["ItemProcessor"]["States"].values()
        assert batch_task["Parameters"] == {"FunctionName": "<ScoringFunctionArn>", "Payload.$": "$"}


@pytest.mark.parametrize("kind", ["csv", "jsonl"])
def test_the_maps_read_the_parameters_and_the_request_through_the_start_step(
    definition: dict[str, Any], job_state: Any, kind: str
) -> None:
    states = definition["States"]
    key = f"daily/2026-11-27.{kind}"
    state = job_state({"input": f"s3://rows-in/{key}", "output": "s3://scores-out/run/", "probabilities": True})
    chosen = choose(states["CheckRequest"], state)

    assert chosen == {"csv": "ScoreCsv", "jsonl": "ScoreJsonLines"}[kind]
    name = chosen
    map_state = states[name]
    parameters = map_state["ItemReader"]["Parameters"]
    assert (at(state, parameters["Bucket.$"]), at(state, parameters["Key.$"])) == ("rows-in", key)
    assert at(state, map_state["ItemBatcher"]["MaxItemsPerBatchPath"]) == int(BATCH["RowsPerBatch"])
    assert at(state, map_state["MaxConcurrencyPath"]) == int(BATCH["BatchMaxConcurrency"])
    assert at(state, map_state["ToleratedFailurePercentagePath"]) == float(BATCH["BatchToleratedFailurePercentage"])
    batch_input = map_state["ItemBatcher"]["BatchInput"]
    assert (at(state, batch_input["probabilities.$"]), at(state, batch_input["id_column.$"])) == (True, "id")
    writer = map_state["ResultWriter"]["Parameters"]
    assert at(state, writer["Bucket.$"]) == "scores-out"
    assert at(state, writer["Prefix.$"]) == "run/map-results/run-1"


def test_a_refused_request_fails_the_execution_with_the_reason(definition: dict[str, Any], job_state: Any) -> None:
    states = definition["States"]
    state = job_state({"input": "s3://somewhere-else/rows.csv", "output": "s3://scores-out/"})

    refused = states[choose(states["CheckRequest"], state)]

    assert refused == {"Type": "Fail", "Error": "InvalidRequest", "CausePath": "$.error"}
    assert at(state, refused["CausePath"]) == 'input: this job may use the bucket rows-in only, got "somewhere-else"'


def test_the_job_ends_with_the_files_and_fails_if_the_map_did(definition: dict[str, Any]) -> None:
    states = definition["States"]

    assert definition["StartAt"] == "ReadRequest"
    assert states["WriteFiles"]["Parameters"] == {"FunctionName": "<FinishFunctionArn>", "Payload.$": "$"}
    assert states["WriteFiles"]["Next"] == "CheckJob"
    [failed] = states["CheckJob"]["Choices"]
    assert (failed["Variable"], failed["StringEquals"]) == ("$.status", "FAILED")
    assert states[failed["Next"]]["Type"] == "Fail"
    assert states[states["CheckJob"]["Default"]]["Type"] == "Succeed"


def test_every_lambda_call_retries_throttling_and_service_errors_with_backoff(
    definition: dict[str, Any], stack: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    substitutions = stack[0]["BatchScoringStateMachine"]["Properties"]["DefinitionSubstitutions"]
    found = tasks(definition["States"])

    assert set(found) == {"ReadRequest", "WriteFiles", "ScoreCsv/ScoreCsvBatch", "ScoreJsonLines/ScoreJsonLinesBatch"}
    for task in found.values():
        assert task["Resource"] == "arn:aws:states:::lambda:invoke"
        assert task["OutputPath"] == "$.Payload"
        [retry] = task["Retry"]
        assert set(retry["ErrorEquals"]) >= TRANSIENT_LAMBDA_ERRORS
        assert "States.ALL" not in retry["ErrorEquals"]
        assert retry["BackoffRate"] > 1
        assert retry["MaxAttempts"] >= 3
    assert substitutions == {
        "StartFunctionArn": {"Fn::GetAtt": ["BatchStartFunction", "Arn"]},
        "ScoringFunctionArn": {"Fn::GetAtt": ["BatchScoringFunction", "Arn"]},
        "FinishFunctionArn": {"Fn::GetAtt": ["BatchFinishFunction", "Arn"]},
    }


def statements(resources: dict[str, Any], role: str) -> list[dict[str, Any]]:
    properties = resources[role]["Properties"]
    policies = properties.get("Policies", [])
    return [statement for policy in policies for statement in policy["PolicyDocument"]["Statement"]]


def grants(resources: dict[str, Any], role: str) -> dict[str, set[str]]:
    """Each action the role's inline policies allow, with the resources it is allowed on."""
    allowed: dict[str, set[str]] = {}
    for statement in statements(resources, role):
        assert statement["Effect"] == "Allow"
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        targets = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        for action in actions:
            allowed.setdefault(action, set()).update(json.dumps(target, sort_keys=True) for target in targets)
    return allowed


def sub(text: str) -> str:
    return json.dumps({"Fn::Sub": text}, sort_keys=True)


def get_att(name: str) -> str:
    return json.dumps({"Fn::GetAtt": [name, "Arn"]}, sort_keys=True)


def test_the_state_machine_reads_only_the_input_bucket_writes_only_the_output_bucket_and_invokes_only_its_functions(
    stack: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    resources, _ = stack
    input_objects = sub("arn:${AWS::Partition}:s3:::${InputBucket}/*")
    output_objects = sub("arn:${AWS::Partition}:s3:::${OutputBucket}/*")
    states = "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}"
    state_machine = f"{states}:stateMachine:${{AWS::StackName}}-batch-scoring"
    executions = f"{states}:execution:${{AWS::StackName}}-batch-scoring/*"

    assert grants(resources, "BatchScoringStateMachineRole") == {
        "lambda:InvokeFunction": {get_att(f"Batch{step}Function") for step in ("Start", "Scoring", "Finish")},
        "s3:GetObject": {input_objects, output_objects},
        "s3:PutObject": {output_objects},
        "s3:ListMultipartUploadParts": {output_objects},
        "s3:AbortMultipartUpload": {output_objects},
        "states:StartExecution": {sub(state_machine)},
        "states:DescribeExecution": {sub(executions)},
        "states:StopExecution": {sub(executions)},
    }
    assert not resources["BatchScoringStateMachineRole"]["Properties"].get("ManagedPolicyArns")


def test_the_functions_get_only_what_their_step_uses(stack: tuple[dict[str, Any], dict[str, Any]]) -> None:
    resources, _ = stack
    output_bucket = sub("arn:${AWS::Partition}:s3:::${OutputBucket}")
    output_objects = sub("arn:${AWS::Partition}:s3:::${OutputBucket}/*")

    input_objects = sub("arn:${AWS::Partition}:s3:::${InputBucket}/*")

    assert grants(resources, "BatchStartFunctionRole") == {"s3:GetObject": {input_objects}}
    assert grants(resources, "BatchScoringFunctionRole") == {}
    assert grants(resources, "BatchFinishFunctionRole") == {
        "s3:ListBucket": {output_bucket},
        "s3:GetObject": {output_objects, input_objects},
        "s3:PutObject": {output_objects},
        "s3:AbortMultipartUpload": {output_objects},
    }
    for role in ("BatchStartFunctionRole", "BatchScoringFunctionRole", "BatchFinishFunctionRole"):
        assert resources[role]["Properties"]["ManagedPolicyArns"] == [BASIC_EXECUTION]


def test_the_scoring_function_loads_the_same_model_as_the_api() -> None:
    resources, _ = deployed({**BATCH, **S3_MODEL})
    model_object = sub("arn:${AWS::Partition}:s3:::${ModelBucket}/${ModelKey}")

    assert grants(resources, "BatchScoringFunctionRole") == {"s3:GetObjectVersion": {model_object}}
    api = resources["PredictFunction"]["Properties"]["Environment"]["Variables"]
    batch = resources["BatchScoringFunction"]["Properties"]["Environment"]["Variables"]
    assert {name: value for name, value in api.items() if name.startswith("MODEL_")} == {
        name: value for name, value in batch.items() if name.startswith("MODEL_")
    }
    assert batch["MODEL_S3_BUCKET"] == "models"

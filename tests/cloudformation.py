"""template.yaml as CloudFormation would deploy it, offline: the SAM transform, then the
template's conditions evaluated for given parameter values (a small subset of CloudFormation's
intrinsics: enough for this template, and refusing any other)."""

from __future__ import annotations

import copy
import functools
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cfnlint.rules import Rules

# samtranslator and cfn-lint are imported where used: every test process imports this module
# while collecting, and the two cost it seconds.

TEMPLATE = Path(__file__).resolve().parent.parent / "template.yaml"
NO_VALUE = {"Ref": "AWS::NoValue"}

# Parameters that turn the BatchScoring job on, with non-default limits so tests can see them wired.
BATCH_SCORING_PARAMETERS = {
    "EnableBatchScoring": "true",
    "InputBucket": "rows-in",
    "OutputBucket": "scores-out",
    "RowsPerBatch": "250",
    "BatchMaxConcurrency": "40",
    "BatchToleratedFailurePercentage": "10",
}


class NoManagedPolicies:
    """The translator asks IAM for managed policy ARNs; offline there are none to look up."""

    def load(self) -> dict[str, str]:
        return {}


def source_template() -> dict[str, Any]:
    """template.yaml parsed, its short-form intrinsics (!Ref, !Sub...) as their long forms: a copy of
    its own to each caller, which may change it."""
    return copy.deepcopy(_parsed_template())


@functools.cache
def _parsed_template() -> dict[str, Any]:
    """template.yaml parsed once per test process, as SAM reads it (local/lambda_local.py's reader)."""
    from local.lambda_local import read_template

    template: dict[str, Any] = read_template(TEMPLATE)
    return template


def transformed(parameters: dict[str, str], source: dict[str, Any] | None = None) -> dict[str, Any]:
    """The SAM transform's output for `parameters` (CodeUris stand in as S3 objects), of template.yaml
    or of `source` (a parsed template, e.g. a mutated copy of it)."""
    from samtranslator.translator.transform import transform

    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    template = copy.deepcopy(source) if source is not None else source_template()
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = "s3://bucket/code.zip"
    result: dict[str, Any] = transform(template, parameters, NoManagedPolicies())
    return result


def _condition(expression: Any, conditions: dict[str, Any], values: dict[str, str]) -> bool:
    if isinstance(expression, dict) and len(expression) == 1:
        [(name, argument)] = expression.items()
        if name == "Fn::Equals":
            left, right = (_value(item, values) for item in argument)
            return bool(left == right)
        if name == "Fn::Not":
            return not _condition(argument[0], conditions, values)
        if name == "Fn::And":
            return all(_condition(item, conditions, values) for item in argument)
        if name == "Condition":
            return _condition(conditions[argument], conditions, values)
    raise ValueError(f"unsupported condition {expression}")


def _value(expression: Any, values: dict[str, str]) -> Any:
    if isinstance(expression, dict) and set(expression) == {"Ref"} and expression["Ref"] in values:
        return values[expression["Ref"]]
    return expression


def _resolve(node: Any, truth: dict[str, bool], values: dict[str, str]) -> Any:
    if isinstance(node, dict):
        if set(node) == {"Fn::If"}:
            name, when_true, when_false = node["Fn::If"]
            return _resolve(when_true if truth[name] else when_false, truth, values)
        if set(node) == {"Ref"} and node["Ref"] in values:
            return values[node["Ref"]]
        resolved = {key: _resolve(value, truth, values) for key, value in node.items()}
        return {key: value for key, value in resolved.items() if value != NO_VALUE}
    if isinstance(node, list):
        return [item for item in (_resolve(item, truth, values) for item in node) if item != NO_VALUE]
    return node


def parameter_values(template: dict[str, Any], parameters: dict[str, str]) -> dict[str, str]:
    """Every parameter's value: `parameters`, else the template's default."""
    values = {name: str(spec.get("Default", "")) for name, spec in template["Parameters"].items()}
    values.update(parameters)
    return values


def deployed(
    parameters: dict[str, str] | None = None, source: dict[str, Any] | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(resources as deployed with `parameters`, the raw transformed template), of template.yaml or `source`."""
    parameters = parameters or {}
    template = transformed(parameters, source)
    values = parameter_values(template, parameters)
    conditions = template.get("Conditions", {})
    truth = {name: _condition(expression, conditions, values) for name, expression in conditions.items()}
    resources = {
        name: _resolve(copy.deepcopy(resource), truth, values)
        for name, resource in template["Resources"].items()
        if truth.get(resource.get("Condition", ""), True)
    }
    return resources, template


def rule_violations(template: dict[str, Any], parameters: dict[str, str]) -> list[str]:
    """The AssertDescription of every template rule assertion CloudFormation would fail for
    `parameters` (it refuses to create or update the stack then)."""
    values = parameter_values(template, parameters)
    conditions = template.get("Conditions", {})
    violations = []
    for rule in template.get("Rules", {}).values():
        if "RuleCondition" in rule and not _condition(rule["RuleCondition"], conditions, values):
            continue
        violations += [
            assertion["AssertDescription"]
            for assertion in rule["Assertions"]
            if not _condition(assertion["Assert"], conditions, values)
        ]
    return violations


@functools.cache
def _lint_rules() -> Rules:
    """cfn-lint's rules, loaded once per test process (about half a second a load); its own
    command line checks any number of templates with one set of rules."""
    from cfnlint.config import ConfigMixIn
    from cfnlint.runner import Runner

    return Runner(ConfigMixIn()).rules


def lint_findings(template: dict[str, Any], parameter_sets: Sequence[dict[str, str]] = ()) -> list[str]:
    """cfn-lint's findings on a transformed template deployed with each of `parameter_sets` (or
    with every allowed value of each parameter when none), one line each (empty when it passes),
    as `cfn-lint --ignore-checks W2001 --parameters ... --parameters ...` reports them: cfn-lint
    resolves every Ref with each set in turn, in one pass over the template (about 3 s).

    Run in this process rather than as a command: cfn-lint's rules and resource schemas then load
    once per test process, not once per template. W2001 (parameter not used): SAM inlines the
    parameters it resolves itself (DeploymentType) into its output, which still declares them."""
    from cfnlint.config import ConfigMixIn
    from cfnlint.decode.decode import decode_str
    from cfnlint.runner import run_template_by_data

    decoded, matches = decode_str(json.dumps(template))
    if decoded is not None and not matches:
        config = ConfigMixIn(ignore_checks=["W2001"], parameters=[dict(values) for values in parameter_sets])
        matches = list(run_template_by_data(decoded, config, _lint_rules()))
    return [f"{match.rule.id} {match.message} (line {match.linenumber})" for match in matches]

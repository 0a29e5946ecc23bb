"""template.yaml's Rules for the batch job: it needs both buckets named, and one bucket may be both
(the start step then refuses an output prefix that holds the input: tests/unit/batchjob/test_start.py)."""

from __future__ import annotations

import pytest

from tests.cloudformation import rule_violations, source_template

BATCH = {"EnableBatchScoring": "true", "InputBucket": "rows-in", "OutputBucket": "scores-out"}


@pytest.mark.parametrize("output_bucket", ["scores-out", "rows-in"])
def test_two_buckets_or_one_for_both_input_and_output_deploy(output_bucket: str) -> None:
    assert rule_violations(source_template(), {**BATCH, "OutputBucket": output_bucket}) == []


@pytest.mark.parametrize("missing", ["InputBucket", "OutputBucket"])
def test_a_batch_job_without_one_of_its_buckets_is_refused_at_deploy(missing: str) -> None:
    assert rule_violations(source_template(), {**BATCH, missing: ""}) == [f"EnableBatchScoring needs {missing}."]

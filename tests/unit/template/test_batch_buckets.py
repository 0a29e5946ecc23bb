"""template.yaml's Rules: a batch job whose outputs could overwrite its inputs is refused at deploy."""

from __future__ import annotations

from tests.cloudformation import rule_violations, source_template

BATCH = {"EnableBatchScoring": "true", "InputBucket": "rows-in", "OutputBucket": "scores-out"}


def test_one_bucket_for_both_input_and_output_is_refused_at_deploy() -> None:
    template = source_template()

    assert rule_violations(template, BATCH) == []
    assert rule_violations(template, {**BATCH, "OutputBucket": "rows-in"}) == [
        "InputBucket and OutputBucket must differ, so that no output of the batch job can overwrite an input."
    ]

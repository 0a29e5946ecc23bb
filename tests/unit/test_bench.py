"""The benchmark's arithmetic: percentiles and target verdicts."""

from __future__ import annotations

import pytest

from bench.run import Target, percentile


def test_percentile_picks_the_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]

    assert percentile(values, 0.5) == 51.0
    assert percentile(values, 0.99) == 99.0
    assert percentile([3.0], 0.99) == 3.0


@pytest.mark.parametrize(
    ("target", "value", "reference", "met"),
    [
        (Target(0.40, "baseline"), 1.0, 3.0, True),
        (Target(0.40, "baseline"), 1.5, 3.0, False),
        (Target(180), 177.6, None, True),
        (Target(180), 181.0, None, False),
    ],
)
def test_targets_are_ratios_or_absolute(target: Target, value: float, reference: float | None, met: bool) -> None:
    assert target.met(value, reference) is met

"""The training profile and drift against it (serving/profile.py): a planted shift is found, an
unshifted feature is not flagged, at the window size docs/drift.md recommends."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from serving.manifest import Feature, NumberProfile
from serving.profile import RECOMMENDED_ROWS, Thresholds, bin_of, build_profile, number_profile, psi, score_drift
from tests.shared import examples

REFERENCE_ROWS = 5000
FEATURES = [
    Feature(name="income", type="number"),
    Feature(name="age", type="number", allow_missing=True),
    Feature(name="colour", type="category", categories=["red", "green", "blue", "white"]),
]
COLOURS = np.array(["red", "green", "blue"], dtype=object)
COLOUR_SHARES = [0.5, 0.3, 0.2]


def generated_rows(generator: np.random.Generator, rows: int, income_shift: float = 0.0) -> np.ndarray:
    table = np.empty((rows, len(FEATURES)), dtype=object)
    table[:, 0] = generator.lognormal(10 + income_shift, 0.5, rows)
    ages = generator.normal(40, 12, rows)
    ages[generator.random(rows) < 0.02] = math.nan
    table[:, 1] = ages
    table[:, 2] = generator.choice(COLOURS, size=rows, p=COLOUR_SHARES)
    return table


def columns_of(table: np.ndarray) -> dict[str, list[object]]:
    return {
        feature.name: [None if isinstance(value, float) and math.isnan(value) else value for value in table[:, index]]
        for index, feature in enumerate(FEATURES)
    }


@settings(max_examples=examples(0.5), deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_a_planted_shift_in_one_feature_is_found_and_the_others_are_not_flagged(seed: int) -> None:
    generator = np.random.default_rng(seed)
    reference = generated_rows(generator, REFERENCE_ROWS)
    classes = [0, 1]
    profile = build_profile(FEATURES, reference, list(generator.integers(0, 2, 1000)), classes, source="training")
    current = generated_rows(generator, RECOMMENDED_ROWS, income_shift=0.5)
    predictions = list(generator.integers(0, 2, RECOMMENDED_ROWS))

    result = score_drift(profile, columns_of(current), predictions, classes)

    by_name = {drift.name: drift for drift in result.features}
    assert by_name["income"].drifted == ["psi"]
    assert by_name["age"].drifted == []
    assert by_name["colour"].drifted == []
    assert result.predictions.drifted == []
    assert result.features[0].name == "income", "worst first"


@settings(max_examples=examples(0.5), deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_traffic_like_the_training_rows_is_not_flagged(seed: int) -> None:
    generator = np.random.default_rng(seed)
    profile = build_profile(FEATURES, generated_rows(generator, REFERENCE_ROWS), [0, 1], [0, 1], source="training")
    result = score_drift(profile, columns_of(generated_rows(generator, RECOMMENDED_ROWS)), [0, 1] * 500, [0, 1])
    assert not result.drifted, [(drift.name, drift.psi) for drift in result.features]


def test_more_missing_values_and_unseen_categories_are_scored_apart_from_psi() -> None:
    generator = np.random.default_rng(7)
    profile = build_profile(FEATURES, generated_rows(generator, REFERENCE_ROWS), [0, 1], [0, 1], source="training")
    current = generated_rows(generator, RECOMMENDED_ROWS)
    current[:200, 1] = math.nan  # 20 % more missing ages
    current[:100, 2] = "white"  # a category the training rows never had

    result = score_drift(profile, columns_of(current), [0, 1] * 500, [0, 1])

    by_name = {drift.name: drift for drift in result.features}
    assert "missing_change" in by_name["age"].drifted
    assert by_name["age"].missing_change == pytest.approx(0.18, abs=0.03)
    assert "unknown_share" in by_name["colour"].drifted
    assert by_name["colour"].unknown_share == pytest.approx(0.1, abs=0.01)


def test_a_value_on_an_edge_falls_in_the_bin_below_it() -> None:
    assert bin_of(np.array([0.5, 1.0, 1.5, 2.0, 2.5]), [1.0, 2.0]).tolist() == [0, 0, 1, 1, 2]


def test_the_profile_of_a_number_has_deciles_and_its_own_shares() -> None:
    values = np.arange(1000, dtype=np.float64)
    profile = number_profile(values)
    assert len(profile.edges) == 9
    assert profile.frequencies == pytest.approx([0.1] * 10)
    assert (profile.min, profile.max) == (0.0, 999.0)


def test_psi_of_identical_distributions_is_zero_and_an_empty_bin_is_a_large_change() -> None:
    assert psi([0.5, 0.5], [0.5, 0.5]) == 0
    assert psi([0.5, 0.5, 0.0], [0.4, 0.4, 0.2]) > 1


def test_a_profile_whose_bins_do_not_match_its_edges_is_refused() -> None:
    with pytest.raises(ValidationError, match="2 edges make 3 bins, not 2"):
        NumberProfile(edges=[1.0, 2.0], frequencies=[0.5, 0.5])
    with pytest.raises(ValidationError, match=r"sum to 0\.9"):
        NumberProfile(edges=[1.0], frequencies=[0.5, 0.4])
    with pytest.raises(ValidationError, match="strictly increasing"):
        NumberProfile(edges=[2.0, 1.0], frequencies=[0.2, 0.3, 0.5])


def test_thresholds_can_be_raised() -> None:
    generator = np.random.default_rng(3)
    profile = build_profile(FEATURES, generated_rows(generator, REFERENCE_ROWS), [0, 1], [0, 1], source="training")
    shifted = columns_of(generated_rows(generator, RECOMMENDED_ROWS, income_shift=0.5))
    assert score_drift(profile, shifted, [0, 1] * 500, [0, 1]).drifted
    assert not score_drift(profile, shifted, [0, 1] * 500, [0, 1], Thresholds(psi=100)).drifted

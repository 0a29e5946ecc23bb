"""The model manifest's profile check (serving/manifest.py): the training profile describes
exactly the captured features, each as its type and with its categories."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from serving.manifest import SUM_TOLERANCE, CategoryProfile, Manifest, NumberProfile

Change = Callable[[dict[str, Any]], None]


@pytest.fixture
def manifest(training_dir: Path) -> dict[str, Any]:
    """The Iris model's manifest, as the build writes it, to change."""
    loaded: dict[str, Any] = json.loads((training_dir / "manifest.json").read_text())
    return loaded


def as_category(feature: str, categories: list[str]) -> Change:
    """The manifest's `feature` made a category feature of `categories`."""

    def change(manifest: dict[str, Any]) -> None:
        for described in manifest["features"]:
            if described["name"] == feature:
                described.update(type="category", categories=categories)

    return change


def profiled_as_category(feature: str, categories: list[str]) -> Change:
    def change(manifest: dict[str, Any]) -> None:
        share = 1 / len(categories)
        manifest["profile"]["features"][feature] = {"type": "category", "frequencies": dict.fromkeys(categories, share)}

    return change


def not_captured(feature: str) -> Change:
    def change(manifest: dict[str, Any]) -> None:
        manifest["profile"]["not_captured"] = [feature]
        del manifest["profile"]["features"][feature]

    return change


def predictions_profiled_as_numbers(manifest: dict[str, Any]) -> None:
    """A classifier's predictions profiled as a regressor's: bins of a number (here a feature's)."""
    manifest["profile"]["predictions"] = manifest["profile"]["features"]["petal_width"]


def checked(manifest: dict[str, Any], *changes: Change) -> None:
    for change in changes:
        change(manifest)
    Manifest.model_validate(manifest).check_profile()


def test_the_builds_profile_agrees_with_its_manifest(manifest: dict[str, Any]) -> None:
    checked(manifest)


def test_a_feature_left_out_of_the_profile_is_not_described_there(manifest: dict[str, Any]) -> None:
    checked(manifest, not_captured("sepal_length"))


def test_a_category_feature_profiled_with_its_own_categories_agrees(manifest: dict[str, Any]) -> None:
    checked(
        manifest, as_category("petal_width", ["thin", "wide"]), profiled_as_category("petal_width", ["wide", "thin"])
    )


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            [profiled_as_category("petal_width", ["thin", "wide"])],
            "the profile describes petal_width as a category, it is a number",
        ),
        (
            # The first feature is left out of the profile: the ones after it are still checked.
            [not_captured("sepal_length"), profiled_as_category("petal_width", ["thin", "wide"])],
            "the profile describes petal_width as a category, it is a number",
        ),
        (
            [as_category("petal_width", ["thin", "wide"]), profiled_as_category("petal_width", ["thin", "long"])],
            "the profile's categories of petal_width are not the feature's",
        ),
        (
            [predictions_profiled_as_numbers],
            "a classification model's prediction profile is of type 'classes'",
        ),
    ],
    ids=["a number profiled as a category", "after a feature left out", "other categories", "numbers predicted"],
)
def test_a_profile_that_describes_a_feature_otherwise_is_refused_by_name(
    manifest: dict[str, Any], changes: list[Change], message: str
) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        checked(manifest, *changes)


@pytest.mark.parametrize("shares", [[0.0, 0.0], [SUM_TOLERANCE, 0.0]], ids=["none", "at the tolerance"])
def test_a_feature_that_was_always_missing_has_no_shares(shares: list[float]) -> None:
    """Every value missing: the shares of the values seen sum to 0, within the tolerance."""
    CategoryProfile(frequencies=dict(zip(["red", "blue"], shares, strict=True)), missing_rate=1.0)
    NumberProfile(edges=[1.0], frequencies=shares, missing_rate=1.0)


@pytest.mark.parametrize(
    ("shares", "expected"), [([0.5, 0.5], 0.0), ([2 * SUM_TOLERANCE, 0.0], 0.0)], ids=["whole", "past the tolerance"]
)
def test_shares_of_a_feature_that_was_always_missing_are_refused(shares: list[float], expected: float) -> None:
    with pytest.raises(ValidationError, match=rf"frequencies sum to {sum(shares)}, expected {expected}"):
        NumberProfile(edges=[1.0], frequencies=shares, missing_rate=1.0)

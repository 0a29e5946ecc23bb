"""The training profile and drift against it: the one binning rule, numpy only.

The build profiles the rows the model was trained on (`build_profile`); `make drift` and the
scheduled drift function score captured rows against that profile (`score_drift`), so the
report a user runs locally and the metric the alarm watches are the same numbers.

Drift is the population stability index (PSI) on the profile's own bins: deciles of each number
feature (a value equal to an edge falls in the bin below it), each category of a category
feature (plus one bin for categories the training rows never had; each feature's codec says
which of the two profiles its column gets), each class of a classifier's
predictions and deciles of a regressor's. PSI = sum((current - reference) * ln(current /
reference)), with shares floored at `FLOOR` so that an empty bin counts as a large change, not an
infinite one. It needs no raw reference rows, only the profile's shares, and reads the same at
any traffic volume; its usual reading is < 0.1 stable, 0.1-0.2 moving, > 0.2 drifted. Sampling
noise alone gives about (bins - 1) * (1 / current rows + 1 / reference rows): with 10 bins, 1,000
current rows and 1,000 reference rows that is 0.018, well under the default threshold, which is
why docs/drift.md recommends windows of at least `RECOMMENDED_ROWS` rows. Missing values are
scored apart from the bins: the change in missing rate, in points.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from serving.codecs import codec_for
from serving.manifest import CategoryProfile, ClassProfile, Feature, Label, NumberProfile, Profile

QUANTILES = tuple(step / 10 for step in range(1, 10))
"""Deciles: ten bins per number when its values allow (ties merge bins)."""
FLOOR = 1e-4
"""The share an empty bin counts as in PSI (a common choice: 0.01 %)."""
DIGITS = 10
"""Shares are written rounded to this many digits: the manifest stays readable, sums stay within 1e-8."""
RECOMMENDED_ROWS = 1000
UNKNOWN = "(unseen)"
"""The bin of a category or class the profiled rows never had."""


@dataclass(frozen=True)
class Thresholds:
    """Above any of these a score counts as drift (the CLI's options and the function's settings)."""

    psi: float = 0.2
    missing_change: float = 0.05
    """The absolute change in a feature's missing rate, as a share (0.05 = 5 points)."""
    unknown_share: float = 0.05
    """The share of a category feature's current values the profiled rows never had."""


@dataclass(frozen=True)
class Drift:
    """One feature's (or the predictions') drift: the scores, and both distributions for a plot."""

    name: str
    kind: Literal["number", "category", "prediction"]
    rows: int
    psi: float
    bins: list[str]
    reference: list[float]
    current: list[float]
    missing_change: float = 0.0
    unknown_share: float = 0.0
    drifted: list[str] = field(default_factory=list)
    """Which scores are above their thresholds: psi, missing_change, unknown_share."""

    def severity(self, thresholds: Thresholds) -> float:
        """The largest score relative to its threshold: what "worst first" sorts by."""
        return max(
            self.psi / thresholds.psi,
            abs(self.missing_change) / thresholds.missing_change,
            self.unknown_share / thresholds.unknown_share,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "rows": self.rows,
            "psi": self.psi,
            "missing_change": self.missing_change,
            "unknown_share": self.unknown_share,
            "drifted": self.drifted,
            "bins": self.bins,
            "reference": self.reference,
            "current": self.current,
        }


def bin_of(values: NDArray[np.float64], edges: Sequence[float] | NDArray[np.float64]) -> NDArray[np.intp]:
    """The bin of each (non-missing) value: bin k holds edges[k-1] < value <= edges[k]."""
    return np.searchsorted(np.asarray(edges, dtype=np.float64), values, side="left")


def shares(counts: NDArray[Any], total: int) -> list[float]:
    return [round(float(count) / total, DIGITS) for count in counts] if total else [0.0] * len(counts)


def psi(reference: Sequence[float], current: Sequence[float]) -> float:
    """The population stability index of two distributions over the same bins."""
    expected = np.maximum(np.asarray(reference, dtype=np.float64), FLOOR)
    actual = np.maximum(np.asarray(current, dtype=np.float64), FLOOR)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def as_numbers(values: Sequence[Any]) -> NDArray[np.float64]:
    """Captured numbers as float64, null (None) as NaN."""
    return np.array(values, dtype=np.float64)


def number_profile(values: NDArray[np.float64]) -> NumberProfile:
    present = values[~np.isnan(values)]
    missing_rate = round(1 - len(present) / len(values), DIGITS) if len(values) else 0.0
    if not len(present):
        return NumberProfile(edges=[], frequencies=[0.0], missing_rate=1.0)
    edges = np.unique(np.quantile(present, QUANTILES, method="inverted_cdf"))
    # The largest value as an edge would leave the last bin empty by construction.
    edges = edges[edges < present.max()]
    counts = np.bincount(bin_of(present, edges), minlength=len(edges) + 1)
    return NumberProfile(
        edges=edges.tolist(),
        frequencies=shares(counts, len(present)),
        missing_rate=missing_rate,
        min=float(present.min()),
        max=float(present.max()),
    )


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def category_profile(values: Sequence[Any], categories: Sequence[str]) -> CategoryProfile:
    present = [value for value in values if not _is_missing(value)]
    counts = np.array([sum(1 for value in present if value == category) for category in categories])
    missing_rate = round(1 - len(present) / len(values), DIGITS) if len(values) else 0.0
    return CategoryProfile(
        frequencies=dict(zip(categories, shares(counts, len(present)), strict=True)),
        missing_rate=1.0 if values and not present else missing_rate,
    )


def class_profile(predictions: Sequence[Label], classes: Sequence[Label]) -> ClassProfile:
    position = {label: index for index, label in enumerate(classes)}
    counts = np.bincount([position[label] for label in predictions], minlength=len(classes))
    return ClassProfile(frequencies=shares(counts, len(predictions)))


def build_profile(
    features: Sequence[Feature],
    rows: NDArray[Any],
    predictions: Sequence[Label],
    classes: Sequence[Label],
    source: Literal["training", "sample"],
    not_captured: Sequence[str] = (),
) -> Profile:
    """The profile of `rows` (2-D, in feature order) and of the model's `predictions` on held-out rows."""
    described: dict[str, NumberProfile | CategoryProfile] = {}
    for position, feature in enumerate(features):
        if feature.name in not_captured:
            continue
        described[feature.name] = codec_for(feature).profile(rows[:, position])
    outputs: ClassProfile | NumberProfile = (
        class_profile(predictions, classes) if classes else number_profile(as_numbers(predictions))
    )
    return Profile(
        source=source,
        rows=len(rows),
        prediction_rows=len(predictions),
        features=described,
        predictions=outputs,
        not_captured=list(not_captured),
    )


def _edge_labels(edges: Sequence[float]) -> list[str]:
    if not edges:
        return ["all"]
    shown = [f"{edge:.4g}" for edge in edges]
    return [f"<={shown[0]}", *(f"{low}-{high}" for low, high in itertools.pairwise(shown)), f">{shown[-1]}"]


def number_drift(
    name: str,
    profile: NumberProfile,
    values: Sequence[Any],
    thresholds: Thresholds,
    kind: Literal["number", "prediction"] = "number",
) -> Drift:
    numbers = as_numbers(values)
    missing = np.isnan(numbers)
    present = numbers[~missing]
    counts = np.bincount(bin_of(present, profile.edges), minlength=len(profile.edges) + 1)
    current = shares(counts, len(present))
    missing_change = float(missing.mean()) - profile.missing_rate if len(numbers) else 0.0
    return _judged(
        Drift(
            name=name,
            kind=kind,
            rows=len(numbers),
            psi=psi(profile.frequencies, current) if len(present) else 0.0,
            bins=_edge_labels(profile.edges),
            reference=list(profile.frequencies),
            current=current,
            missing_change=missing_change,
        ),
        thresholds,
    )


def _labelled_drift(
    name: str,
    kind: Literal["category", "prediction"],
    reference: dict[str, float],
    values: Sequence[Any],
    missing_rate: float,
    thresholds: Thresholds,
) -> Drift:
    """Drift over named bins (categories, classes), with one more bin for values the profile lacks."""
    present = [str(value) for value in values if not _is_missing(value)]
    seen = {label for label, share in reference.items() if share > 0}
    position = {label: index for index, label in enumerate(reference)}
    indices = [position.get(value, len(reference)) for value in present]
    counts = np.bincount(np.asarray(indices, dtype=np.intp), minlength=len(reference) + 1)
    current = shares(counts, len(present))
    unknown = sum(1 for value in present if value not in seen) / len(present) if present else 0.0
    return _judged(
        Drift(
            name=name,
            kind=kind,
            rows=len(values),
            psi=psi([*reference.values(), 0.0], current) if present else 0.0,
            bins=[*reference, UNKNOWN],
            reference=[*reference.values(), 0.0],
            current=current,
            missing_change=(len(values) - len(present)) / len(values) - missing_rate if values else 0.0,
            unknown_share=unknown,
        ),
        thresholds,
    )


def _judged(drift: Drift, thresholds: Thresholds) -> Drift:
    drift.drifted.extend(
        score
        for score, value, limit in (
            ("psi", drift.psi, thresholds.psi),
            ("missing_change", abs(drift.missing_change), thresholds.missing_change),
            ("unknown_share", drift.unknown_share, thresholds.unknown_share),
        )
        if value > limit
    )
    return drift


@dataclass(frozen=True)
class DriftResult:
    features: list[Drift]
    """Worst first."""
    predictions: Drift
    rows: int

    @property
    def drifted(self) -> bool:
        return any(drift.drifted for drift in (*self.features, self.predictions))

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "drifted": self.drifted,
            "enough_rows": self.rows >= RECOMMENDED_ROWS,
            "features": [drift.as_dict() for drift in self.features],
            "predictions": self.predictions.as_dict(),
        }


def score_drift(
    profile: Profile,
    columns: Mapping[str, Sequence[Any]],
    predictions: Sequence[Any],
    classes: Sequence[Label],
    thresholds: Thresholds = Thresholds(),
) -> DriftResult:
    """Each profiled feature's drift (`columns` holds its captured values, None where missing) and
    the predictions', worst first."""
    scored = []
    for name, described in profile.features.items():
        values = columns.get(name, [])
        if isinstance(described, CategoryProfile):
            scored.append(
                _labelled_drift(name, "category", described.frequencies, values, described.missing_rate, thresholds)
            )
        else:
            scored.append(number_drift(name, described, values, thresholds))
    if isinstance(profile.predictions, ClassProfile):
        reference = dict(zip((str(label) for label in classes), profile.predictions.frequencies, strict=True))
        outputs = _labelled_drift("prediction", "prediction", reference, predictions, 0.0, thresholds)
    else:
        outputs = number_drift("prediction", profile.predictions, predictions, thresholds, kind="prediction")
    scored.sort(key=lambda drift: (-len(drift.drifted), -drift.severity(thresholds), drift.name))
    return DriftResult(features=scored, predictions=outputs, rows=len(predictions))

"""Errors a compiled engine raises for input the estimator itself would refuse.

They are ValueErrors, as scikit-learn's are, so a caller that turns the estimator's
ValueError into a 4xx does the same for the engine; each builds its own short message.
"""

from __future__ import annotations

from collections.abc import Sequence

QUOTED_LIMIT = 40
LISTED_CATEGORIES = 10


def shortened(value: object, limit: int = QUOTED_LIMIT) -> str:
    """`repr(value)`, cut to `limit` characters so no message grows with the input."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class EngineInputError(ValueError):
    """Input the estimator refuses, refused by the engine in the same place."""


class UnknownCategoryError(EngineInputError):
    """A category the encoder did not see when it was fitted, and may not ignore."""

    def __init__(self, feature: str, value: object, known: Sequence[object]) -> None:
        listed = ", ".join(shortened(category, 20) for category in known[:LISTED_CATEGORIES])
        more = f" and {len(known) - LISTED_CATEGORIES} more" if len(known) > LISTED_CATEGORIES else ""
        super().__init__(f"unknown category {shortened(value)} for feature {shortened(feature)}; known: {listed}{more}")


class NonFiniteInputError(EngineInputError):
    """NaN or infinity where the estimator accepts only finite numbers."""

    def __init__(self, what: str) -> None:
        super().__init__(f"input contains {what}, which this model does not accept")

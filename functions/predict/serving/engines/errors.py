"""Errors a compiled engine raises for input the estimator itself would refuse.

They are ValueErrors, as scikit-learn's are, so a caller that turns the estimator's
ValueError into a 4xx does the same for the engine; each builds its own short message.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

QUOTED_LIMIT = 40
LISTED_CATEGORIES = 10


def shortened(value: object, limit: int = QUOTED_LIMIT) -> str:
    """`repr(value)`, cut to `limit` characters so no message grows with the input."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# XGBoost's native errors (XGBoostError, a ValueError) open with "[time] source-file:line: " and
# end with a stack trace of the server's paths: neither tells a client what was wrong.
NATIVE_LOCATION = re.compile(r"^\[[0-9:]+\] \S+:[0-9]+: ")
NATIVE_STACK = "\nStack trace:"


class EngineInputError(ValueError):
    """Input the estimator refuses, refused by the engine in the same place."""

    @classmethod
    def from_library(cls, error: ValueError) -> EngineInputError:
        """A library's refusal as a client error, in its words without a native location or stack."""
        message = str(error).partition(NATIVE_STACK)[0]
        return cls(NATIVE_LOCATION.sub("", message.strip()) or type(error).__name__)


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

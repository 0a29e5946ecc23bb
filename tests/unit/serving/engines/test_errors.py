"""The engines' input errors (serving/engines/errors.py): bounded messages that name the value and what
is accepted."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from serving.engines.errors import LISTED_CATEGORIES as LISTED
from serving.engines.errors import QUOTED_LIMIT as QUOTED
from serving.engines.errors import EngineInputError, UnknownCategoryError, shortened


@given(length=st.integers(0, 2 * QUOTED))
@example(length=QUOTED - 2)  # a repr of exactly the limit, quoted whole
@example(length=QUOTED - 1)
def test_a_value_is_quoted_whole_up_to_the_limit_and_cut_to_it_beyond(length: int) -> None:
    value = "a" * length  # its repr is 2 characters longer: the quotes
    quoted = shortened(value)

    if length + 2 <= QUOTED:
        assert quoted == "'" + value + "'"
    else:
        assert quoted == "'" + "a" * (QUOTED - 4) + "..."
        assert len(quoted) == QUOTED


@given(n_known=st.integers(1, 2 * LISTED))
def test_an_unknown_category_lists_the_first_known_ones_and_counts_the_rest(n_known: int) -> None:
    known = [f"c{number}" for number in range(n_known)]

    message = str(UnknownCategoryError("island", "Atlantis", known))

    listed = ", ".join(repr(category) for category in known[:LISTED])
    more = f" and {n_known - LISTED} more" if n_known > LISTED else ""
    assert message == f"unknown category 'Atlantis' for feature 'island'; known: {listed}{more}"


@pytest.mark.parametrize(
    ("library_message", "client_message"),
    [
        (
            "[10:21:03] /workspace/src/data/data.cc:1200: Check failed: valid\nStack trace:\n  [bt] (0) /x.so",
            "Check failed: valid",
        ),
        ("  Input contains NaN.  ", "Input contains NaN."),
        ("", "XGBoostError"),
    ],
)
def test_a_library_refusal_keeps_its_reason_or_names_its_type(library_message: str, client_message: str) -> None:
    """Without the native location and stack trace; a refusal with no words left is named by its type."""

    class XGBoostError(ValueError):
        pass

    assert str(EngineInputError.from_library(XGBoostError(library_message))) == client_message

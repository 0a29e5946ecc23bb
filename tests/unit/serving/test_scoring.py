"""serving/scoring.py: ids are copied, never interpreted; what keys a line is the same on every
line; output columns cannot collide with an id column or a class name."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from serving.errors import InvalidRequestError
from serving.scoring import ERROR, PREDICTION, ROW, Scorer

NAMES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
GOOD = dict(zip(NAMES, [6.1, 2.8, 4.7, 1.2], strict=True))
IDS = st.one_of(st.integers(), st.text(max_size=8), st.none(), st.lists(st.integers(), max_size=2))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ids=st.lists(st.tuples(st.booleans(), IDS), max_size=12), first=st.integers(1, 1000))
def test_with_an_id_column_every_line_is_keyed_by_its_own_id_or_is_an_error(
    app_module: ModuleType, ids: list[tuple[bool, Any]], first: int
) -> None:
    records = [{"key": value, **GOOD} if has_id else dict(GOOD) for has_id, value in ids]

    scored = Scorer(app_module.model, id_column="key").score(records, first_row=first)

    assert [line["key"] for line in scored.predictions] == [value for has_id, value in ids if has_id]
    missing = [first + index for index, (has_id, _) in enumerate(ids) if not has_id]
    assert [line[ROW] for line in scored.errors] == missing
    assert all(line[ERROR] == 'no "key": every row of a file with ids needs its id' for line in scored.errors)


def test_without_an_id_column_every_line_is_keyed_by_its_row_number_even_if_it_has_an_id(
    app_module: ModuleType,
) -> None:
    records = [{"id": "a", **GOOD}, dict(GOOD), {"id": 7, **GOOD}]

    scored = Scorer(app_module.model, id_column=None).score(records, first_row=10)

    assert scored.predictions == [{ROW: 10, PREDICTION: 1}, {ROW: 11, PREDICTION: 1}, {ROW: 12, PREDICTION: 1}]


@pytest.mark.parametrize("column", [ROW, PREDICTION, ERROR])
def test_an_id_column_the_output_has_already_is_refused(app_module: ModuleType, column: str) -> None:
    with pytest.raises(InvalidRequestError, match=f'id column "{column}" is a column the output has already'):
        Scorer(app_module.model, id_column=column)


def test_an_id_column_named_as_a_class_is_refused_with_probabilities(app_module: ModuleType) -> None:
    Scorer(app_module.model, id_column="setosa")  # no probability columns: no clash

    with pytest.raises(InvalidRequestError, match='the class name "setosa" would be a second column of that name'):
        Scorer(app_module.model, id_column="setosa", probabilities=True)

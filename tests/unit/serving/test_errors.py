"""Unexpected failures: logged with the invocation's context, answered with a generic 500."""

from __future__ import annotations

import datetime
import decimal
import json
from collections.abc import Sequence
from types import ModuleType
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from local.lambda_runtime import LambdaContext
from serving.errors import MAX_LISTED_PROBLEMS, MAX_QUOTED_CHARS, describe_problems, quote, shorten
from serving.model import LoadedModel, Predictions
from tests.events import http_api_event, response_json, rest_api_event
from tests.unit.conftest import LogRecords


def failing_predict(self: LoadedModel, rows: Sequence[Sequence[float]], probabilities: bool = False) -> Predictions:
    raise RuntimeError("secret internal detail at /var/task/serving/model.py")


@pytest.fixture
def broken_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(LoadedModel, "predict", failing_predict)


@pytest.mark.usefixtures("broken_model")
def test_unexpected_error_is_a_generic_500(app_module: ModuleType, lambda_context: LambdaContext) -> None:
    response = app_module.handler(http_api_event(), lambda_context)

    assert response["statusCode"] == 500
    assert response_json(response) == {"error": "internal error; the request was logged and can be retried"}
    assert "secret" not in response["body"]
    assert "Traceback" not in response["body"]


@pytest.mark.usefixtures("broken_model")
def test_unexpected_error_is_logged_with_context(
    app_module: ModuleType, lambda_context: LambdaContext, log_records: LogRecords
) -> None:
    event = rest_api_event()

    app_module.handler(event, lambda_context)

    [record] = log_records()
    assert record["level"] == "ERROR"
    assert record["message"] == "unhandled error"
    assert record["path"] == "/Prod/predict"
    assert "RuntimeError: secret internal detail" in str(record["exception"])
    assert record["correlation_id"] == event["requestContext"]["requestId"]
    assert record["function_request_id"] == lambda_context.aws_request_id
    assert record["service"] == "iris-predict"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
    max_leaves=50,
)


@given(value=json_values, limit=st.integers(8, 200))
@example(value="a" * 8, limit=10)  # fits exactly
@example(value=["aaaaaaa", 1], limit=10)  # the limit reached exactly between two items
@example(value={"a": "bbb", "c": 1}, limit=11)  # and between two keys
def test_quoted_values_are_bounded(value: Any, limit: int) -> None:
    quoted = quote(value, limit)

    assert len(quoted) <= limit
    full = json.dumps(value)
    assert quoted == full if len(full) <= limit else quoted == full[: limit - 3] + "..."


def test_a_value_json_cannot_encode_is_quoted_as_its_text() -> None:
    assert quote({"day": datetime.date(2026, 12, 8), "amount": decimal.Decimal("1.50")}) == (
        '{"day": "2026-12-08", "amount": "1.50"}'
    )


@given(text=st.text(), limit=st.integers(8, 200))
@example(text="x" * 12, limit=12)  # fits exactly
@example(text="x" * 13, limit=12)
@example(text="\u00e9" * 3, limit=12)  # fits once escaped: 12 characters
def test_shortened_text_is_bounded_ascii(text: str, limit: int) -> None:
    shortened = shorten(text, limit)

    escaped = text.encode("unicode_escape").decode("ascii")
    assert shortened == (escaped if len(escaped) <= limit else escaped[: limit - 3] + "...")
    assert len(shortened) <= limit
    assert shortened.isascii()


def test_quoting_a_deep_or_huge_value_is_cheap_and_safe() -> None:
    deep: list[Any] = []
    for _ in range(100_000):
        deep = [deep]

    assert quote(deep) == "[" * (MAX_QUOTED_CHARS - 3) + "..."
    assert quote(["x" * 6_000_000]) == '["' + "x" * (MAX_QUOTED_CHARS - 5) + "..."


@given(count=st.integers(0, 50))
def test_at_most_a_few_problems_are_listed(count: int) -> None:
    problems = [{"loc": (f"field{i}",), "msg": "Field required", "type": "missing"} for i in range(count)]

    described = describe_problems(problems)

    assert described.count("Field required") == min(count, MAX_LISTED_PROBLEMS)
    assert described.endswith(f"and {count - MAX_LISTED_PROBLEMS} more") == (count > MAX_LISTED_PROBLEMS)


@pytest.mark.parametrize(
    ("prefix", "located"),
    [("", "body: "), ("instances[2]", "instances[2]: ")],
    ids=["the body itself", "a part named by the caller"],
)
def test_a_problem_with_the_whole_value_is_located_at_it(prefix: str, located: str) -> None:
    """pydantic locates a problem with the value it validates, not with a field of it, nowhere."""
    with pytest.raises(ValidationError) as raised:
        TypeAdapter(dict[str, float]).validate_python(5)

    assert describe_problems(raised.value.errors(), prefix) == f"{located}Input should be a valid dictionary (got 5)"

"""The number codec: one rule for a number feature's JSON value, CSV cell, JSON Schema and protocol data."""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from local.lambda_runtime import LambdaContext
from serving.codecs import codec_for
from serving.codecs.number import FLOAT32_MAX, NumberCodec
from serving.errors import BadRequestError
from serving.manifest import Feature
from serving.model import LoadedModel, Predictions
from tests.events import http_api_event, response_json
from tests.unit.serving.codecs.agreement import (
    cell_verdict,
    check_protocol_agrees,
    json_verdict,
    protocol_verdict,
    same,
    schema_accepts,
)

BEYOND_FLOAT32 = float(np.nextafter(np.float64(FLOAT32_MAX), math.inf))
# JSON numbers (finite: NaN and Infinity are not JSON), around the float32 bound and 2**53, and
# what a client may send instead of a number.
NUMBERS = (
    st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from([FLOAT32_MAX, -FLOAT32_MAX, BEYOND_FLOAT32, 0.0, -0.0, 2.0**53, 2.0**53 + 2, 0.5, 1e-45])
    | st.integers(-(10**40), 10**40)
    | st.integers(-(2**53) - 2, 2**53 + 2)
)
NOT_NUMBERS = st.none() | st.booleans() | st.text(max_size=8) | st.lists(st.integers(), max_size=1)
CELLS = st.text(alphabet="0123456789+-.eE _naifINF\u0661", max_size=10) | st.from_regex(
    r"[+-]?[0-9]{1,5}(\.[0-9]{0,3})?([eE][+-]?[0-9]{1,3})?", fullmatch=True
)


def cell(value: Any) -> str:
    """How a CSV writer writes a JSON number or null."""
    return "" if value is None else repr(float(value)) if isinstance(value, float) else str(value)


@pytest.mark.parametrize("allow_missing", [False, True])
@given(value=NUMBERS | NOT_NUMBERS)
def test_json_csv_protocol_and_schema_agree_on_every_value(allow_missing: bool, value: Any) -> None:
    codec = codec_for(Feature(name="x", allow_missing=allow_missing))
    accepted, model_value = json_verdict(codec, value)

    assert schema_accepts(codec.json_schema(), value) == accepted
    check_protocol_agrees(codec, value, accepted, model_value)
    if value is None or type(value) in (int, float):
        cell_accepted, cell_value = cell_verdict(codec, cell(value))
        assert cell_accepted == accepted
        if accepted:
            assert same(cell_value, model_value)


@pytest.mark.parametrize("allow_missing", [False, True])
@given(text=CELLS)
def test_a_csv_cell_is_read_alike_on_the_fast_path_and_row_by_row(allow_missing: bool, text: str) -> None:
    codec = codec_for(Feature(name="x", allow_missing=allow_missing))

    accepted, _ = cell_verdict(codec, text)

    # The JSON value the cell is read as is one the codec's JSON Schema describes, or refuses.
    assert schema_accepts(codec.json_schema(), codec.read_cell(text)) == accepted


@pytest.mark.parametrize("literal", [math.nan, math.inf, -math.inf])
def test_nan_and_infinity_are_refused_on_every_path(literal: float) -> None:
    codec = codec_for(Feature(name="x", allow_missing=True))

    assert json_verdict(codec, literal) == (False, None)
    for datatype in codec.datatypes:
        assert protocol_verdict(codec, literal, datatype) == (False, None)
    assert cell_verdict(codec, repr(literal)) == (False, None)


@pytest.mark.parametrize("sent", [6.1, 6.099999904632568])
def test_an_fp32_value_is_rounded_to_float32_and_an_fp64_value_is_not(sent: float) -> None:
    """The protocol's FP32 value is a float32: 6.1 as a client writes it, and as Triton's client
    widens float32(6.1) to a JSON double, both reach the model as float32(6.1)."""
    codec = codec_for(Feature(name="x"))

    assert codec.decode([sent], "FP32", "inputs[0]").tolist() == [float(np.float32(6.1))]
    assert codec.decode([sent], "FP64", "inputs[0]").tolist() == [sent]


@given(value=st.floats(-FLOAT32_MAX, FLOAT32_MAX) | st.none())
def test_every_accepted_fp32_value_reaches_the_model_as_its_float32(value: float | None) -> None:
    codec = codec_for(Feature(name="x", allow_missing=True))

    [decoded] = codec.decode([value], "FP32", "inputs[0]").tolist()

    if value is None:
        assert math.isnan(decoded)
    else:
        assert decoded == float(np.float32(value))
        assert not math.isinf(decoded)


def test_an_fp32_input_equal_to_6_1_reaches_the_model_as_float32_6_1(
    app_module: ModuleType, lambda_context: LambdaContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through /v2 as a client calls it: FP32 rows reach the model rounded, FP64 rows as sent."""
    given_rows: list[list[float]] = []
    real_predict = LoadedModel.predict

    def spying_predict(self: LoadedModel, rows: Any, probabilities: bool = False) -> Predictions:
        given_rows.extend(np.asarray(rows).tolist())
        return real_predict(self, rows, probabilities)

    monkeypatch.setattr(LoadedModel, "predict", spying_predict)
    name = app_module.model.manifest.name
    for datatype in ("FP32", "FP64"):
        body = {"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": datatype, "data": [6.1, 2.8, 4.7, 1.2]}]}
        event = http_api_event(method="POST", path=f"/v2/models/{name}/infer", body=body)
        response = app_module.handler(event, lambda_context)
        assert response["statusCode"] == 200, response_json(response)

    rounded, exact = given_rows
    assert rounded == [float(np.float32(value)) for value in (6.1, 2.8, 4.7, 1.2)]
    assert rounded[0] == float(np.float32(6.1)) != 6.1
    assert exact == [6.1, 2.8, 4.7, 1.2]


def test_a_refused_protocol_value_names_its_index_and_what_is_accepted() -> None:
    codec = codec_for(Feature(name="x"))

    with pytest.raises(BadRequestError, match=r'^inputs\[2\]\.data\[1\] is "7"; FP64 data must be JSON numbers$'):
        codec.decode([1.0, "7"], "FP64", "inputs[2]")
    with pytest.raises(BadRequestError, match=r"^inputs\[0\]\.data\[0\] is 1.5; INT64 data must be JSON integers$"):
        codec.decode([1.5], "INT64", "inputs[0]")
    with pytest.raises(BadRequestError, match=r"values must be finite and within ±3.4028234663852886e\+38$"):
        codec.decode([BEYOND_FLOAT32], "FP32", "inputs[0]")


def test_a_value_after_a_null_is_still_checked() -> None:
    """A missing value is skipped, not the rest of the tensor: "7" after it is refused, not read as 7."""
    codec = codec_for(Feature(name="x", allow_missing=True))

    refusal = r'^inputs\[0\]\.data\[1\] is "7"; FP64 data must be JSON numbers or null$'
    with pytest.raises(BadRequestError, match=refusal):
        codec.decode([None, "7"], "FP64", "inputs[0]")


def test_the_largest_float32_is_accepted_in_a_column_read_cell_by_cell() -> None:
    """A missing cell sends its column off the fast path; the bound stays inclusive there too."""
    codec = codec_for(Feature(name="x", allow_missing=True))

    numbers, read = codec.read_cells([repr(FLOAT32_MAX), ""])

    assert read.tolist() == [True, True]
    assert numbers[0] == FLOAT32_MAX


def test_a_number_feature_takes_no_categories() -> None:
    with pytest.raises(ValueError, match="`categories` is only for features of type category"):
        NumberCodec.check(Feature.model_construct(name="x", type="number", categories=["a"], allow_missing=False))


@pytest.mark.parametrize(("text", "reason"), [("abc", "is not a number"), ("inf", "is not a finite number")])
def test_a_training_cell_that_is_no_finite_number_is_refused_saying_why(text: str, reason: str) -> None:
    codec = codec_for(Feature(name="x"))

    assert codec.training_value(" 2.5") == 2.5
    with pytest.raises(ValueError, match=f"^{reason}$"):
        codec.training_value(text)


def test_a_number_feature_with_categories_is_refused_with_exactly_why() -> None:
    feature = Feature.model_construct(name="x", type="number", categories=["a"], allow_missing=False)

    with pytest.raises(ValueError, match=r"^`categories` is only for features of type category$"):
        NumberCodec.check(feature)

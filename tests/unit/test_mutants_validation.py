"""Request validation at its edges, where mutation testing looks for what no test pins: the
float32 bound exactly, a long list of categories, missing values, and the accepted shapes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from serving.errors import BadRequestError, InvalidRequestError
from serving.inference import RequestInput, decode_column
from serving.manifest import Feature
from serving.schemas import RowParser

FLOAT32_MAX = float(np.finfo(np.float32).max)
COLOURS = [f"c{i}" for i in range(12)]


def refusal(parser: RowParser, body: object) -> str:
    with pytest.raises(InvalidRequestError) as refused:
        parser.parse(body)
    return str(refused.value)


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_the_float32_range_is_accepted_up_to_its_largest_value_and_no_further(sign: float) -> None:
    parser = RowParser([Feature(name="x")])
    largest = sign * FLOAT32_MAX
    beyond = float(np.nextafter(largest, sign * math.inf))

    assert parser.parse({"features": [largest]}).rows.tolist() == [[largest]]
    assert "features[0]: Input should be within ±3.4e38, the range the model compares" in refusal(
        parser, {"features": [beyond]}
    )


def test_a_long_category_list_is_cut_after_ten_and_says_how_many_more() -> None:
    parser = RowParser([Feature(name="colour", type="category", categories=COLOURS, allow_missing=True)])
    listed = ", ".join(f'"{colour}"' for colour in COLOURS[:10])

    message = refusal(parser, {"features": ["mauve"]})

    assert f"features[0]: Input should be one of {listed} and 2 more (see GET /model) or null" in message


@pytest.mark.parametrize("count", [1, 9, 10, 11, 12, 25])
def test_at_most_ten_categories_are_listed_then_how_many_more(count: int) -> None:
    categories = [f"c{index}" for index in range(count)]
    parser = RowParser([Feature(name="colour", type="category", categories=categories)])
    listed = ", ".join(f'"{category}"' for category in categories[:10])
    more = f" and {count - 10} more (see GET /model)" if count > 10 else ""

    message = refusal(parser, {"features": ["mauve"]})

    assert f"features[0]: Input should be one of {listed}{more} (got " in message


def test_ten_categories_are_listed_whole_and_null_only_where_missing_values_are_allowed() -> None:
    parser = RowParser([Feature(name="colour", type="category", categories=COLOURS[:10])])
    listed = ", ".join(f'"{colour}"' for colour in COLOURS[:10])

    message = refusal(parser, {"features": [None]})

    assert f"features[0]: Input should be one of {listed}" in message
    assert "more" not in message.split("expected")[0]
    assert "or null" not in message


def test_missing_values_become_nan_only_where_allowed() -> None:
    features = [
        Feature(name="size", allow_missing=True),
        Feature(name="colour", type="category", categories=["red"], allow_missing=True),
        Feature(name="weight"),
    ]
    parser = RowParser(features)

    rows = parser.parse({"size": None, "colour": None, "weight": 2.5}).rows

    assert rows.dtype == object
    assert math.isnan(rows[0, 0])
    assert math.isnan(rows[0, 1])
    assert rows[0, 2] == 2.5
    assert "features[2]" in refusal(parser, {"features": [1.0, "red", None]})


def test_the_accepted_shapes_name_every_feature_and_what_it_takes() -> None:
    parser = RowParser(
        [
            Feature(name="colour", type="category", categories=["red"], allow_missing=True),
            Feature(name="size"),
        ]
    )

    message = refusal(parser, {"features": ["red"]})

    assert message == "features: expected 2 values (colour, size), got 1"
    assert refusal(parser, {"features": ["red", "big"]}).endswith(
        'expected {"features": [2 values]}, {"instances": [rows]} or {"colour": category or null, "size": number}'
    )


def test_an_all_numeric_model_takes_numbers_as_float64() -> None:
    parser = RowParser([Feature(name="a"), Feature(name="b")])

    parsed = parser.parse({"instances": [[1, 2.5], {"b": 4, "a": 3}]})

    assert parsed.rows.dtype == np.float64
    assert parsed.rows.tolist() == [[1.0, 2.5], [3.0, 4.0]]
    assert parsed.single is False
    assert parser.parse({"a": 1, "b": 2}).single is True
    assert refusal(parser, {"features": [1]}) == "features: expected 2 numbers (a, b), got 1"


def test_long_categories_are_quoted_short_so_ten_and_the_count_of_the_rest_fit_the_message() -> None:
    # Twelve 40-character categories: quoted whole, ten of them would pass the 400 characters a
    # problem's text may take, and the "and 2 more" pointing at GET /model would be cut off.
    categories = [f"{index:02d}" + "x" * 38 for index in range(12)]
    parser = RowParser([Feature(name="colour", type="category", categories=categories)])

    message = refusal(parser, {"features": ["mauve"]})

    assert all(f'"{category[:10]}' in message for category in categories[:10])
    assert categories[0] not in message
    assert '"10x' not in message
    assert "and 2 more (see GET /model)" in message


def test_the_open_inference_protocol_reads_each_category_feature_as_its_own_column() -> None:
    """/v2 takes one tensor per feature: a category feature's BYTES tensor is validated as a list
    of that feature's categories (a number feature's is not one), its refusals naming the tensor."""
    features = [
        Feature(name="x"),
        Feature(name="colour", type="category", categories=COLOURS[:3]),
        Feature(name="size", type="category", categories=["S", "M"], allow_missing=True),
    ]
    parser = RowParser(features)
    colour = RequestInput(name="colour", shape=[3], datatype="BYTES", data=["c2", "c0", "c2"])
    sizes = RequestInput(name="size", shape=[3, 1], datatype="BYTES", data=["M", None, "S"])

    assert decode_column(colour, parser.codecs[1], "inputs[1]").tolist() == ["c2", "c0", "c2"]
    medium, missing, small = decode_column(sizes, parser.codecs[2], "inputs[2]").tolist()
    assert (medium, small) == ("M", "S")
    assert math.isnan(missing)  # a missing value, as the engines read one
    unknown = RequestInput(name="colour", shape=[2], datatype="BYTES", data=["c0", "S"])
    with pytest.raises(
        BadRequestError, match=r'^inputs\[1\]\.data\[1\]: Input should be one of "c0", "c1", "c2" \(got "S"\)$'
    ):
        decode_column(unknown, parser.codecs[1], "inputs[1]")


@pytest.mark.parametrize(
    ("instance", "quoted"), [(5, "5"), ("row", '"row"'), (True, "true"), (None, "null"), (2.5, "2.5")]
)
def test_an_instance_that_is_neither_a_list_nor_an_object_is_refused_quoting_it(instance: object, quoted: str) -> None:
    parser = RowParser([Feature(name="a"), Feature(name="b")])

    assert refusal(parser, {"instances": [[1.0, 2.0], instance]}) == (
        f"instances[1]: expected a list of 2 numbers or an object with a, b (got {quoted})"
    )


ACCEPTED = '{"features": [2 numbers]}, {"instances": [rows]} or {"a": number, "b": number}'


@pytest.mark.parametrize(
    ("body", "refused"),
    [
        ({"instances": []}, "instances: List should have at least 1 item after validation, not 0 (got [])"),
        ({"instances": "x"}, 'instances: Input should be a valid list (got "x")'),
        ({"features": "abc"}, 'features: Input should be a valid list (got "abc")'),
        ({"features": [1.0, 2.0], "extra": 1}, "extra: Extra inputs are not permitted (got 1)"),
    ],
)
def test_a_body_of_the_wrong_shape_is_refused_at_its_own_key_naming_the_accepted_shapes(
    body: dict[str, object], refused: str
) -> None:
    parser = RowParser([Feature(name="a"), Feature(name="b")])

    assert refusal(parser, body) == f"invalid request: {refused}; expected {ACCEPTED}"

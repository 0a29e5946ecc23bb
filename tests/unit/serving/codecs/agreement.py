"""What every codec must agree with itself on: one JSON value validated for /predict, the same
value as a CSV cell (one cell, and a column on the fast path), the same value as protocol data,
and the codec's JSON Schemas, all accept or refuse it together and give the model the same value."""

from __future__ import annotations

import math
from typing import Any

import jsonschema
import numpy as np
from pydantic import TypeAdapter, ValidationError

from serving.codecs import FeatureCodec
from serving.errors import BadRequestError


def same(left: Any, right: Any) -> bool:
    """Equal values for the model: NaN (a missing value) equals NaN; numbers compare as floats."""
    if isinstance(left, float | np.floating) and isinstance(right, float | np.floating):
        return (math.isnan(left) and math.isnan(right)) or float(left) == float(right)
    return bool(type(left) is type(right) and left == right)


def json_verdict(codec: FeatureCodec, value: Any) -> tuple[bool, Any]:
    try:
        return True, TypeAdapter(codec.json_type).validate_python(value)
    except ValidationError:
        return False, None


def schema_accepts(schema: dict[str, Any], value: Any) -> bool:
    return jsonschema.Draft202012Validator(schema).is_valid(value)


def protocol_verdict(codec: FeatureCodec, value: Any, datatype: str) -> tuple[bool, Any]:
    try:
        return True, codec.decode([value], datatype, "inputs[0]")[0]
    except BadRequestError:
        return False, None


def cell_verdict(codec: FeatureCodec, cell: str) -> tuple[bool, Any]:
    """A CSV cell read one at a time (the per-row path) and validated, checked against the fast path."""
    accepted, value = json_verdict(codec, codec.read_cell(cell))
    values, ok = codec.read_cells([cell])
    assert bool(ok[0]) == accepted, f"fast path and per-row path disagree on {cell!r}"
    if accepted:
        assert same(values[0], value), f"fast path gives {values[0]!r}, per-row path {value!r} for {cell!r}"
    return accepted, value


def check_protocol_agrees(codec: FeatureCodec, value: Any, accepted: bool, model_value: Any) -> None:
    """Each protocol datatype the codec takes accepts `value` exactly as its JSON Schema for that
    datatype does and, for the JSON body's own schema, gives the model the JSON validation's value."""
    for datatypes, schema in codec.protocol_schemas():
        nullable = {"anyOf": [schema, {"type": "null"}]} if codec.allow_missing else schema
        for datatype in datatypes:
            decoded, decoded_value = protocol_verdict(codec, value, datatype)
            assert decoded == schema_accepts(nullable, value), (datatype, value)
            if schema == codec.value_schema():
                assert decoded == accepted, (datatype, value)
            if decoded and schema == codec.value_schema():
                # FP32 data is float32 (serving.codecs.number); every other datatype gives the value as sent.
                expected = float(np.float32(model_value)) if datatype == "FP32" else model_value
                assert same(decoded_value, expected), (datatype, value, decoded_value, expected)

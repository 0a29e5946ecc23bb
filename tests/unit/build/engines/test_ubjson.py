"""The UBJSON reader gives back the document a UBJSON writer wrote, in every container form the
format allows (plain, counted, typed), typed numeric arrays as numpy arrays in native byte order,
and refuses malformed bytes with a message saying where."""

from __future__ import annotations

import struct
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from build.engines.ubjson import UBJSONError, loads

# The smallest UBJSON integer type of each range, as a writer picks them (the spec's markers).
INTEGER_TYPES = [(b"i", ">b", -(2**7), 2**7 - 1), (b"U", ">B", 0, 2**8 - 1), (b"I", ">h", -(2**15), 2**15 - 1)]
INTEGER_TYPES += [(b"l", ">i", -(2**31), 2**31 - 1), (b"L", ">q", -(2**63), 2**63 - 1)]


def integer(value: int) -> bytes:
    for marker, layout, low, high in INTEGER_TYPES:
        if low <= value <= high:
            return marker + struct.pack(layout, value)
    raise ValueError(value)


def text(value: str) -> bytes:
    """A string's length and bytes, without its `S` marker (an object's key)."""
    encoded = value.encode()
    return integer(len(encoded)) + encoded


def encode(value: Any, form: str) -> bytes:
    """`value` as UBJSON, its containers plain (`[...]`), `counted` (`[#n...`) or with no-op
    markers (`N`) before every value; numbers as the smallest integer type or a float64."""
    noop = b"N" if form == "noop" else b""
    if value is None or isinstance(value, bool):
        return noop + {None: b"Z", True: b"T", False: b"F"}[value]
    if isinstance(value, int):
        return noop + integer(value)
    if isinstance(value, float):
        return noop + b"D" + struct.pack(">d", value)
    if isinstance(value, str):
        return noop + b"S" + text(value)
    if isinstance(value, list):
        items = b"".join(encode(item, form) for item in value)
        if form == "counted":
            return b"[#" + integer(len(value)) + items
        return noop + b"[" + items + noop + b"]"
    pairs = b"".join(text(key) + encode(item, form) for key, item in value.items())
    if form == "counted":
        return b"{#" + integer(len(value)) + pairs
    return noop + b"{" + pairs + noop + b"}"


scalars = st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False) | st.text()
documents = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=12,
)


@given(documents, st.sampled_from(["plain", "counted", "noop"]))
def test_a_document_reads_back_as_it_was_written(document: Any, form: str) -> None:
    assert loads(encode(document, form)) == document


@given(documents)
def test_numbers_keep_their_python_type(document: Any) -> None:
    def types(value: Any) -> Any:
        if isinstance(value, list):
            return [types(item) for item in value]
        if isinstance(value, dict):
            return {key: types(item) for key, item in value.items()}
        return type(value)

    assert types(loads(encode(document, "plain"))) == types(document)


@pytest.mark.parametrize(
    ("marker", "dtype"),
    [(b"i", ">i1"), (b"U", ">u1"), (b"I", ">i2"), (b"l", ">i4"), (b"L", ">i8"), (b"d", ">f4"), (b"D", ">f8")],
)
def test_a_typed_numeric_array_is_one_native_numpy_array_of_the_same_values(marker: bytes, dtype: str) -> None:
    values = np.array([0, 1, 2, 100, -3 if dtype[1] != "u" else 3], dtype=dtype)
    if dtype[1] == "f":
        values = np.array([1.5, -0.0, 3.4e38 if dtype == ">f4" else 1e300, np.inf, 1e-45], dtype=dtype)

    array = loads(b"[$" + marker + b"#" + integer(values.size) + values.tobytes())

    assert isinstance(array, np.ndarray)
    assert array.dtype == np.dtype(dtype).newbyteorder("=")
    assert array.dtype.isnative
    assert array.tobytes() == values.astype(array.dtype).tobytes()


def test_typed_containers_of_other_types_and_single_float32s_read_as_values() -> None:
    typed_strings = b"[$S#" + integer(2) + text("ab") + text("") + b"{$T#" + integer(1) + text("k")
    document = b"[#" + integer(3) + typed_strings + b"d" + struct.pack(">f", 0.1)

    assert loads(document) == [["ab", ""], {"k": True}, float(np.float32(0.1))]


def test_chars_and_high_precision_numbers_read_as_strings() -> None:
    assert loads(b"[Cx" + b"H" + text("3.14159265358979323846") + b"]") == ["x", "3.14159265358979323846"]


def test_a_key_of_more_than_255_bytes_reads_whole() -> None:
    key = "k" * 300

    assert loads(b"{" + text(key) + b"Z}") == {key: None}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "UBJSON ends early at byte 0"),
        (b"[i", "UBJSON ends early at byte 2"),
        (b"SU\x05abc", "UBJSON ends early at byte 3"),
        (b"[$D#U\x02" + b"\x00" * 15, "UBJSON ends early at byte 6"),
        (b"Ti\x01", "2 bytes after the UBJSON document"),
        (b"[TX]", r"unknown UBJSON marker b'X' at byte 2"),
        (b"[$i]", "a typed container without a count at byte 3"),
        (b"SD" + struct.pack(">d", 1.0), r"expected a length at byte 1, got b'D'"),
        (b"Sd" + struct.pack(">f", 1.0), r"expected a length at byte 1, got b'd'"),
        (b"SZ", r"expected a length at byte 1, got b'Z'"),
        (b"Si\xff", "negative length at byte 3"),
        (b"SU\x01\xff", "not UBJSON: 'utf-8' codec can't decode byte 0xff"),
    ],
)
def test_malformed_bytes_are_refused_saying_where(data: bytes, message: str) -> None:
    with pytest.raises(UBJSONError, match=message):
        loads(data)

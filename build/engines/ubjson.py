"""Read UBJSON (Universal Binary JSON), the format of XGBoost's `save_raw("ubj")` models.

Why by hand: the exact float32 split thresholds of an XGBoost model live only in its JSON and
UBJSON forms, and UBJSON holds them as raw IEEE floats (JSON as decimal text, which would have to
be rounded back). The UBJSON readers on PyPI (py-ubjson, unmaintained since 2020) return typed
arrays as Python lists, element by element, which is slow for a model of a million nodes; here a
typed array (`[$<type>#<count>`, how XGBoost writes every per-node array) becomes one numpy array.
"""

from __future__ import annotations

from typing import Any

import numpy as np

# UBJSON's numeric markers: all big-endian.
NUMBERS: dict[bytes, np.dtype[Any]] = {
    b"i": np.dtype(">i1"),
    b"U": np.dtype(">u1"),
    b"I": np.dtype(">i2"),
    b"l": np.dtype(">i4"),
    b"L": np.dtype(">i8"),
    b"d": np.dtype(">f4"),
    b"D": np.dtype(">f8"),
}
NO_OP = b"N"


class UBJSONError(ValueError):
    """The bytes are not UBJSON this reader understands; says where."""


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = memoryview(data)
        self.position = 0

    def _take(self, size: int) -> memoryview:
        if self.position + size > len(self.data):
            raise UBJSONError(f"UBJSON ends early at byte {self.position}")
        chunk = self.data[self.position : self.position + size]
        self.position += size
        return chunk

    def marker(self) -> bytes:
        marker = bytes(self._take(1))
        while marker == NO_OP:
            marker = bytes(self._take(1))
        return marker

    def number(self, marker: bytes) -> Any:
        dtype = NUMBERS[marker]
        return np.frombuffer(self._take(dtype.itemsize), dtype=dtype)[0].item()

    def count(self) -> int:
        marker = self.marker()
        if marker not in NUMBERS or marker in (b"d", b"D"):
            raise UBJSONError(f"expected a length at byte {self.position - 1}, got {marker!r}")
        value = int(self.number(marker))
        if value < 0:
            raise UBJSONError(f"negative length at byte {self.position}")
        return value

    def string(self) -> str:
        return bytes(self._take(self.count())).decode()

    def value(self, marker: bytes) -> Any:
        if marker in NUMBERS:
            return self.number(marker)
        if marker == b"S" or marker == b"H":
            return self.string()
        if marker == b"C":
            return bytes(self._take(1)).decode()
        constants = {b"T": True, b"F": False, b"Z": None}
        if marker in constants:
            return constants[marker]
        if marker == b"[":
            return self.array()
        if marker == b"{":
            return self.object()
        raise UBJSONError(f"unknown UBJSON marker {marker!r} at byte {self.position - 1}")

    def _header(self) -> tuple[bytes | None, int | None, bytes | None]:
        """A container's optional `$type` and `#count`, else its first marker."""
        element_type = None
        marker = self.marker()
        if marker == b"$":
            element_type = self.marker()
            marker = self.marker()
            if marker != b"#":
                raise UBJSONError(f"a typed container without a count at byte {self.position - 1}")
        if marker == b"#":
            return element_type, self.count(), None
        return None, None, marker

    def array(self) -> Any:
        element_type, count, marker = self._header()
        if count is not None:
            if element_type in NUMBERS:
                dtype = NUMBERS[element_type]
                raw = np.frombuffer(self._take(count * dtype.itemsize), dtype=dtype)
                return raw.astype(dtype.newbyteorder("="))
            if element_type is not None:
                return [self.value(element_type) for _ in range(count)]
            return [self.value(self.marker()) for _ in range(count)]
        items = []
        while marker != b"]":
            assert marker is not None
            items.append(self.value(marker))
            marker = self.marker()
        return items

    def object(self) -> dict[str, Any]:
        element_type, count, marker = self._header()
        result: dict[str, Any] = {}
        if count is not None:
            for _ in range(count):
                key = self.string()
                result[key] = self.value(element_type if element_type is not None else self.marker())
            return result
        while marker != b"}":
            # A key is a string without its `S` marker: the marker read was its length's.
            self.position -= 1
            key = self.string()
            result[key] = self.value(self.marker())
            marker = self.marker()
        return result


def loads(data: bytes) -> Any:
    """The document in `data`: objects as dicts, typed numeric arrays as numpy arrays (native
    byte order), other arrays as lists; UBJSONError if it is not UBJSON."""
    reader = _Reader(data)
    try:
        document = reader.value(reader.marker())
    except (IndexError, UnicodeDecodeError) as error:
        raise UBJSONError(f"not UBJSON: {error}") from None
    if reader.position != len(data):
        raise UBJSONError(f"{len(data) - reader.position} bytes after the UBJSON document")
    return document

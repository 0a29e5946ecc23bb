"""Opt-in request capture: one JSON line on stdout per sampled request, nothing on the network.

With CAPTURE_SAMPLE_PERCENT above 0 (template parameter CaptureSamplePercent), a sampled request's
validated rows (as the model saw them, without the features the spec marks `capture = false`), its
predictions, its probabilities when asked for, and the model's name, version and engine, the
Lambda request id and the time go to the function's log as one line. A CloudWatch Logs
subscription filter matching `FILTER_PATTERN` hands those lines, and only those, to Amazon Data
Firehose, which writes them to the capture bucket (template.yaml, docs/drift.md). The request
pays for a random draw and, when sampled, a record built as text from parts encoded at start
and one write and flush (bench/capture.py measures it; docs/drift.md gives the figure).

The draw uses the `random` module's global state, which serving/snapstart.py reseeds after a
SnapStart restore, so environments restored from one snapshot do not sample in lockstep.
"""

from __future__ import annotations

import json
import math
import random
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from json.encoder import encode_basestring_ascii
from typing import Any, TextIO

from numpy.typing import NDArray

from serving.codecs import codec_for
from serving.manifest import Manifest

CAPTURE_KEY = "capture"
CAPTURE_SCHEMA = "v1"
FILTER_PATTERN = f'{{ $.{CAPTURE_KEY} = "{CAPTURE_SCHEMA}" }}'
"""The subscription filter's pattern: template.yaml's CaptureSubscriptionFilter says the same."""
MAX_RECORD_CHARS = 200_000
"""A record stays below CloudWatch Logs' 256 KB event size: a larger batch is split across records."""
RECORD_KEYS_CHARS = 64
"""A record's characters besides its header, its rows and its request id: the keys, brackets and first_row."""
ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False)
"""What a record is, as json would write it; the record is built as text (`json_value`), since each
call of a JSONEncoder builds its C encoder anew and costs microseconds even for one number."""

Handler = Callable[[Any, Any], dict[str, Any]]


def json_value(value: Any) -> str:
    """`value` exactly as ENCODER writes it, NaN (a missing value) as null; fast for the types a
    validated row, a label and a probability hold (json itself writes a float as its repr)."""
    kind = type(value)
    if kind is float:
        if math.isfinite(value):
            return repr(value)
        if math.isnan(value):
            return "null"
    elif kind is str:
        return encode_basestring_ascii(value)
    elif kind is int:
        return repr(value)
    return ENCODER.encode(value)  # anything else, and ±inf: refused as json refuses it


class Capture:
    """Writes the capture records of one model, sampling `percent` of the requests."""

    def __init__(self, manifest: Manifest, percent: float, stream: TextIO | None = None) -> None:
        self.rate = percent / 100
        captured = {feature.name for feature in manifest.captured_features}
        self.positions = [index for index, feature in enumerate(manifest.features) if feature.name in captured]
        self.every_feature = len(self.positions) == len(manifest.features)
        kept = [feature for feature in manifest.features if feature.name in captured]
        # Validated numbers that cannot be missing are finite floats, which json writes as their
        # repr: `%r` formats them straight away, other values go through json_value.
        self.plain_numbers = all(codec_for(feature).numeric and not feature.allow_missing for feature in kept)
        slot = "%r" if self.plain_numbers else "%s"
        # One row's object with a slot per value: its keys are encoded once, here.
        self.row_format = "{" + ",".join(f"{encode_basestring_ascii(feature.name)}:{slot}" for feature in kept) + "}"
        header = {
            CAPTURE_KEY: CAPTURE_SCHEMA,
            "model": manifest.name,
            "version": manifest.version,
            "engine": manifest.serving_engine.name,
        }
        # The same for every record: encoded once, the record's own fields follow it.
        self.header = ENCODER.encode(header)[:-1] + ',"time_ms":'
        self.stream = stream
        self.request_id = ""

    def sample(self, rows: NDArray[Any], labels: list[Any], probabilities: NDArray[Any] | None) -> None:
        """Write the request's record if it is drawn (percent of the time)."""
        if random.random() < self.rate:
            self.write(rows, labels, probabilities)

    def write(self, rows: NDArray[Any], labels: list[Any], probabilities: NDArray[Any] | None) -> None:
        """Write the rows' record(s): one line per MAX_RECORD_CHARS, rows in order, then flush."""
        values = (rows if self.every_feature else rows[:, self.positions]).tolist()
        row_format = self.row_format
        if self.plain_numbers:
            instances = [row_format % tuple(row) for row in values]
        else:
            instances = [row_format % tuple(map(json_value, row)) for row in values]
        predictions = [json_value(label) for label in labels]
        proba = None
        if probabilities is not None:
            proba = ["[" + ",".join(map(json_value, row)) + "]" for row in probabilities.tolist()]
        start = (
            f"{self.header}{int(time.time() * 1000)},"
            f'"request_id":{encode_basestring_ascii(self.request_id)},"first_row":'
        )
        stream = self.stream or sys.stdout
        if len(instances) == 1:  # the request path's usual case: one record
            bounds: Iterable[tuple[int, int]] = ((0, 1),)
        else:
            bounds = _record_bounds(instances, predictions, proba, MAX_RECORD_CHARS - len(start) - RECORD_KEYS_CHARS)
        for first, end in bounds:
            line = (
                f'{start}{first},"instances":[{",".join(instances[first:end])}],'
                f'"predictions":[{",".join(predictions[first:end])}]'
            )
            if proba is not None:
                line += f',"probabilities":[{",".join(proba[first:end])}]'
            stream.write(line + "}\n")
        stream.flush()


def _record_bounds(
    instances: list[str], predictions: list[str], proba: list[str] | None, budget: int
) -> Iterator[tuple[int, int]]:
    """The [first, end) rows of each record: as many as fit in `budget` characters (one row at least)."""
    first, size = 0, 0
    for index, instance in enumerate(instances):
        row_size = len(instance) + len(predictions[index]) + (len(proba[index]) if proba else 0) + 3
        if index > first and size + row_size > budget:
            yield first, index
            first, size = index, 0
        size += row_size
    yield first, len(instances)


active: Capture | None = None
"""The function's capture, when CAPTURE_SAMPLE_PERCENT turns it on (app.py configures it)."""


def configure(manifest: Manifest, percent: float) -> None:
    global active
    active = Capture(manifest, percent) if percent > 0 else None


def sample(rows: NDArray[Any], labels: list[Any], probabilities: NDArray[Any] | None) -> None:
    """The request path's one call: nothing at all when capture is off."""
    if active is not None:
        active.sample(rows, labels, probabilities)


def with_request_id(handler: Handler) -> Handler:
    """The Lambda handler, telling the capture each invocation's request id."""

    def handle(event: Any, context: Any) -> dict[str, Any]:
        if active is not None:
            active.request_id = getattr(context, "aws_request_id", "")
        return handler(event, context)

    return handle

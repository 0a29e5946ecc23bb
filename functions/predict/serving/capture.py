"""Opt-in request capture: one JSON line on stdout per sampled request, nothing on the network.

With CAPTURE_SAMPLE_PERCENT above 0 (template parameter CaptureSamplePercent), a sampled request's
validated rows (as the model saw them, without the features the spec marks `capture = false`), its
predictions, its probabilities when asked for, and the model's name, version and engine, the
Lambda request id and the time go to the function's log as one line. A CloudWatch Logs
subscription filter matching `FILTER_PATTERN` hands those lines, and only those, to Amazon Data
Firehose, which writes them to the capture bucket (template.yaml, docs/drift.md). The request
pays for a random draw and, when sampled, one json.dumps and one write (bench/capture.py).

The draw uses the `random` module's global state, which serving/snapstart.py reseeds after a
SnapStart restore, so environments restored from one snapshot do not sample in lockstep.
"""

from __future__ import annotations

import json
import math
import random
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

from numpy.typing import NDArray

from serving.manifest import Manifest

CAPTURE_KEY = "capture"
CAPTURE_SCHEMA = "v1"
FILTER_PATTERN = f'{{ $.{CAPTURE_KEY} = "{CAPTURE_SCHEMA}" }}'
"""The subscription filter's pattern: template.yaml's CaptureSubscriptionFilter says the same."""
MAX_RECORD_CHARS = 200_000
"""A record stays below CloudWatch Logs' 256 KB event size: a larger batch is split across records."""
# One encoder for every record: json.dumps with options builds a new one per call.
ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False)

Handler = Callable[[Any, Any], dict[str, Any]]


def _nan_as_null(value: Any) -> Any:
    return None if isinstance(value, float) and math.isnan(value) else value


class Capture:
    """Writes the capture records of one model, sampling `percent` of the requests."""

    def __init__(self, manifest: Manifest, percent: float, stream: TextIO | None = None) -> None:
        self.rate = percent / 100
        captured = {feature.name for feature in manifest.captured_features}
        self.positions = [index for index, feature in enumerate(manifest.features) if feature.name in captured]
        self.names = [feature.name for feature in manifest.features if feature.name in captured]
        self.every_feature = len(self.positions) == len(manifest.features)
        self.nullable = any(feature.allow_missing for feature in manifest.features)
        header = {
            CAPTURE_KEY: CAPTURE_SCHEMA,
            "model": manifest.name,
            "version": manifest.version,
            "engine": manifest.serving_engine.name,
        }
        # The same for every record: encoded once, the record's own fields follow it.
        self.header = ENCODER.encode(header)[:-1] + ","
        self.stream = stream
        self.request_id = ""

    def sample(self, rows: NDArray[Any], labels: list[Any], probabilities: NDArray[Any] | None) -> None:
        """Write the request's record if it is drawn (percent of the time)."""
        if random.random() < self.rate:
            self.write(rows, labels, probabilities)

    def write(self, rows: NDArray[Any], labels: list[Any], probabilities: NDArray[Any] | None) -> None:
        values = (rows if self.every_feature else rows[:, self.positions]).tolist()
        if self.nullable:
            values = [[_nan_as_null(value) for value in row] for row in values]
        instances = [dict(zip(self.names, row, strict=True)) for row in values]
        proba = probabilities.tolist() if probabilities is not None else None
        self._emit(instances, labels, proba, first_row=0, time_ms=int(time.time() * 1000))

    def _emit(
        self,
        instances: list[dict[str, Any]],
        labels: list[Any],
        proba: list[list[float]] | None,
        first_row: int,
        time_ms: int,
    ) -> None:
        fields: dict[str, Any] = {
            "time_ms": time_ms,
            "request_id": self.request_id,
            "first_row": first_row,
            "instances": instances,
            "predictions": labels,
        }
        if proba is not None:
            fields["probabilities"] = proba
        line = self.header + ENCODER.encode(fields)[1:]
        if len(line) > MAX_RECORD_CHARS and len(instances) > 1:
            half = len(instances) // 2
            self._emit(instances[:half], labels[:half], proba[:half] if proba else None, first_row, time_ms)
            self._emit(instances[half:], labels[half:], proba[half:] if proba else None, first_row + half, time_ms)
            return
        stream = self.stream or sys.stdout
        stream.write(line + "\n")
        stream.flush()


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

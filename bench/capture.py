"""Capture and drift figures: what capture adds to a request, and what `make drift` costs.

`python -m bench.capture [--records N]` prints: the time serving/capture.py adds to one /predict
request with capture off, at 10 % and at 100 % (one Iris row, written to /dev/null with a flush,
as to the Lambda log), against the request's own model call; and the time `make drift`'s
reading and scoring take for N captured records (default 1,000,000) in gzip'd JSON lines.
"""

from __future__ import annotations

import argparse
import gzip
import io
import os
import statistics
import sys
import tempfile
import time
import timeit
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from build import DEFAULT_SPEC
from build.bake import bake_model
from build.spec import load_spec
from build.train import model_cache_dir

sys.path.append(str(Path(__file__).resolve().parent.parent / "functions" / "drift"))

from capture_objects import collect, local_objects
from serving import capture
from serving.config import PACKAGE_MODEL_DIR
from serving.manifest import Manifest
from serving.model import load_model
from serving.profile import score_drift

ROW = np.array([[6.1, 2.8, 4.7, 1.2]])
CALLS = 20_000
RECORDS_PER_OBJECT = 50_000


def median_us(call: Callable[[], object], number: int = CALLS) -> float:
    runs = timeit.repeat(call, number=number, repeat=7)
    return statistics.median(runs) / number * 1e6


def per_call_us(percent: float, manifest: Manifest) -> float:
    with Path(os.devnull).open("w") as sink:
        capture.configure(manifest, percent)
        if capture.active is not None:
            capture.active.stream = sink
        spent = median_us(lambda: capture.sample(ROW, [1], None))
    capture.configure(manifest, 0)
    return spent


def drift_seconds(manifest: Manifest, records: int) -> tuple[float, float]:
    """Seconds to write nothing but to read and score `records` one-row records; and the data's size in MB."""
    generator = np.random.default_rng(0)
    rows = np.round(generator.normal([5.8, 3.0, 3.8, 1.2], [0.8, 0.4, 1.7, 0.7], size=(records, 4)), 1)
    with tempfile.TemporaryDirectory() as folder:
        size = 0
        for start in range(0, records, RECORDS_PER_OBJECT):
            stream = io.StringIO()
            writer = capture.Capture(manifest, 100, stream)
            for row in rows[start : start + RECORDS_PER_OBJECT]:
                writer.write(row[None, :], [1], None)
            path = Path(folder) / f"capture-{start:09d}.gz"
            path.write_bytes(gzip.compress(stream.getvalue().encode(), compresslevel=6))
            size += path.stat().st_size
        end = datetime.now(UTC) + timedelta(minutes=1)
        started = time.perf_counter()
        captured = collect(local_objects(Path(folder)), manifest, end - timedelta(days=1), end)
        assert manifest.profile is not None
        score_drift(manifest.profile, captured.columns, captured.predictions, manifest.classes)
        return time.perf_counter() - started, size / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=1_000_000)
    arguments = parser.parse_args()
    spec = load_spec(DEFAULT_SPEC)
    with tempfile.TemporaryDirectory() as package:
        bake_model(Path(package), "compiled", model_cache_dir(spec), spec)
        model = load_model(Path(package) / PACKAGE_MODEL_DIR)
    manifest = model.manifest
    model_call = median_us(lambda: model.predict(ROW), number=2_000)
    off, tenth, full = (per_call_us(percent, manifest) for percent in (0, 10, 100))
    sys.stdout.write(
        f"capture per request (one Iris row): off {off:.2f} µs, 10 % {tenth:.2f} µs, 100 % {full:.2f} µs; "
        f"the compiled model call itself {model_call:.1f} µs (100 % capture = {full / model_call:.0%} of it)\n"
    )
    seconds, megabytes = drift_seconds(manifest, arguments.records)
    sys.stdout.write(
        f"make drift read + score of {arguments.records:,} records ({megabytes:.1f} MB gzip'd): {seconds:.1f} s\n"
    )


if __name__ == "__main__":
    main()

"""Capture and drift figures: what capture adds to a request, what `make drift` takes, what both cost.

`python -m bench.capture [--records N] [--no-write]` measures, in one run:
- the time serving/capture.py adds to one /predict request with capture off, at 10 % and at 100 %
  (one Iris row, written to /dev/null with a flush, as to the Lambda log), against the request's
  own model call: each the best of ROUNDS rounds, wall clock and process CPU time, with the load
  average before and after (on a shared machine the best round is the one least disturbed);
- `make drift` (local/drift.py, end to end: reading, scoring, the report) over N captured
  records (default 1,000,000) laid out as Firehose writes a day of them: gzip'd JSON lines in
  hour folders, one object per 5-minute buffer;
- from those and template.yaml's memory sizes: the cost per million captured requests and the
  scheduled drift function's cost per run, each with its formula.
It writes the sections `capture-cost`, `drift-run-cost` and `drift-measured` of docs/drift.md
(bench/report.py's markers) unless --no-write.
"""

from __future__ import annotations

import argparse
import gzip
import io
import os
import sys
import tempfile
import time
import timeit
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from samtranslator.yaml_helper import yaml_parse
from sklearn.datasets import load_iris

from bench import report
from build import DEFAULT_SPEC, PROJECT_ROOT
from build.bake import bake_model
from build.spec import load_spec
from build.train import model_cache_dir

sys.path.append(str(PROJECT_ROOT / "functions" / "drift"))

from capture_objects import HOUR_FORMAT, collect, hour_prefixes, local_objects
from local import drift as make_drift
from serving import capture
from serving.config import PACKAGE_MODEL_DIR
from serving.manifest import MANIFEST_FILE, Manifest
from serving.model import LoadedModel, load_model
from serving.profile import score_drift

ROW = np.array([[6.1, 2.8, 4.7, 1.2]])
CALLS = 20_000
ROUNDS = 9
PERCENTS = (0, 10, 100)
TEMPLATE = PROJECT_ROOT / "template.yaml"
CAPTURE_PREFIX = "captures/"
# us-east-1 list prices at the time of writing (check the pricing pages).
PRICE_LOGS_INGESTION_PER_GB = 0.50
PRICE_FIREHOSE_PER_GB = 0.029
PRICE_S3_PER_GB_MONTH = 0.023
PRICE_S3_PUT = 0.005 / 1000
PRICE_S3_GET = 0.0004 / 1000
PRICE_S3_LIST = 0.005 / 1000
SECTIONS = ("capture-cost", "drift-run-cost", "drift-measured")


@dataclass(frozen=True)
class Timing:
    wall_us: float
    cpu_us: float


def best_us(call: Callable[[], object], number: int = CALLS) -> Timing:
    """The best of ROUNDS rounds of `number` calls, per call: wall clock and this process's CPU time."""
    wall = timeit.Timer(call, timer=time.perf_counter).repeat(number=number, repeat=ROUNDS)
    cpu = timeit.Timer(call, timer=time.process_time).repeat(number=number, repeat=ROUNDS)
    return Timing(min(wall) / number * 1e6, min(cpu) / number * 1e6)


def per_call(percent: float, manifest: Manifest) -> Timing:
    with Path(os.devnull).open("w") as sink:
        capture.configure(manifest, percent)
        if capture.active is not None:
            capture.active.stream = sink
        spent = best_us(lambda: capture.sample(ROW, [1], None))
    capture.configure(manifest, 0)
    return spent


@dataclass(frozen=True)
class Captured:
    folder: Path
    records: int
    objects: int
    line_bytes: float
    gzip_bytes: int
    start: datetime
    end: datetime


def write_capture(model: LoadedModel, records: int, folder: Path) -> Captured:
    """`records` one-row records as Firehose writes a day of them: an object per 5-minute buffer in
    its hour folder (the records' own time is when they are written, within the range read)."""
    # Traffic like the training rows (Iris drawn with replacement) and the model's own answers:
    # the report a user would get on an ordinary day.
    rows = load_iris().data[np.random.default_rng(0).integers(0, 150, records)]
    labels = model.predict(rows).labels
    end = datetime.now(UTC) + timedelta(hours=1)
    start = end - timedelta(days=1)
    buffers = 24 * 12
    per_object = -(-records // buffers)
    text_bytes = gzip_bytes = 0
    writer = capture.Capture(model.manifest, 100)
    for index, first in enumerate(range(0, records, per_object)):
        arrived = start + timedelta(minutes=5 * index)
        stream = io.StringIO()
        writer.stream = stream
        for row in range(first, min(first + per_object, records)):
            writer.write(rows[row : row + 1], labels[row : row + 1], None)
        text = stream.getvalue().encode()
        path = folder / CAPTURE_PREFIX / arrived.strftime(HOUR_FORMAT) / f"capture-{index:04d}.gz"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(gzip.compress(text, compresslevel=6))
        text_bytes += len(text)
        gzip_bytes += path.stat().st_size
    return Captured(folder, records, index + 1, text_bytes / records, gzip_bytes, start, end)


@dataclass(frozen=True)
class Deployment:
    """What the costs take from template.yaml's defaults."""

    architecture: str
    predict_memory_mb: int
    drift_memory_mb: int
    buffer_seconds: int


def deployment_defaults(template: Path = TEMPLATE) -> Deployment:
    document = yaml_parse(template.read_text())
    resources = document["Resources"]
    hints = resources["CaptureDeliveryStream"]["Properties"]["ExtendedS3DestinationConfiguration"]["BufferingHints"]
    return Deployment(
        architecture=document["Parameters"]["Architecture"]["Default"],
        predict_memory_mb=resources["PredictFunction"]["Properties"]["MemorySize"],
        drift_memory_mb=resources["DriftFunction"]["Properties"]["MemorySize"],
        buffer_seconds=hints["IntervalInSeconds"],
    )


@dataclass(frozen=True)
class DriftRun:
    make_drift_s: float
    make_drift_cpu_s: float
    scoring_cpu_s: float
    """collect + score_drift alone: what the scheduled function computes (without S3's transfer)."""


def time_drift(manifest_path: Path, manifest: Manifest, captured: Captured, out: Path) -> DriftRun:
    arguments = [str(captured.folder), "--manifest", str(manifest_path), "--out", str(out)]
    arguments += ["--start", captured.start.isoformat(), "--end", captured.end.isoformat()]
    wall, cpu = time.perf_counter(), time.process_time()
    make_drift.main(arguments)
    make_drift_s, make_drift_cpu_s = time.perf_counter() - wall, time.process_time() - cpu
    cpu = time.process_time()
    rows = collect(local_objects(captured.folder), manifest, captured.start, captured.end)
    assert manifest.profile is not None
    score_drift(manifest.profile, rows.columns, rows.predictions, manifest.classes)
    return DriftRun(make_drift_s, make_drift_cpu_s, time.process_time() - cpu)


def money(value: float) -> str:
    return f"${value:.4f}" if value < 1 else f"${value:,.2f}"


def capture_cost_section(full: Timing, captured: Captured, deployment: Deployment) -> str:
    size = captured.line_bytes
    ratio = size * captured.records / captured.gzip_bytes
    memory_gb = deployment.predict_memory_mb / 1024
    gb_second = report.PRICE_PER_GB_SECOND[deployment.architecture]
    logs_firehose = 1e6 * size / 1e9 * (PRICE_LOGS_INGESTION_PER_GB + PRICE_FIREHOSE_PER_GB)
    duration = 1e6 * full.wall_us / 1e6 * memory_gb * gb_second
    storage = 1e6 * size / 1e9 / ratio * PRICE_S3_PER_GB_MONTH
    puts_month = 30 * 24 * 3600 / deployment.buffer_seconds * PRICE_S3_PUT
    return "\n".join(
        [
            f"With `s` = {size:.0f} bytes a record (one Iris row, no probabilities), `t` = {full.wall_us:.1f} µs "
            f"= {full.wall_us / 1e6:.2e} s (capture at 100 %, wall-clock as Lambda bills it, measured below), "
            f"`m` = {memory_gb:g} GB (PredictFunction), `r` = {ratio:.1f} "
            f"(gzip's ratio on these records), {deployment.architecture} and us-east-1 list prices at the time of "
            "writing (check the pricing pages):",
            "",
            "```",
            f"cost per 1M = 1e6 * s / 1e9 * ({PRICE_LOGS_INGESTION_PER_GB} CloudWatch Logs ingestion"
            f" + {PRICE_FIREHOSE_PER_GB} Firehose ingestion per GB)      = {money(logs_firehose)}",
            f"            + 1e6 * t * m * {gb_second} Lambda per GB-second              = {money(duration)}",
            f"            + 1e6 * s / 1e9 / r * {PRICE_S3_PER_GB_MONTH} S3 Standard per GB-month kept"
            f"          = {money(storage)} a month",
            f"            + S3 PUTs: one object per {deployment.buffer_seconds // 60} minutes (or 64 MB), "
            f"{PRICE_S3_PUT * 1000} per 1,000 = {money(puts_month)} a month, whatever the traffic",
            "```",
            "",
            f"**{money(logs_firehose + duration + storage)} per million captured requests** (and "
            f"{money(storage)} a month for each million kept), almost all of it CloudWatch Logs ingestion, the "
            "same price as any log line the function writes. Firehose bills each record rounded up to 5 KB, "
            "but its records here are CloudWatch Logs' batches of many lines, not single requests.",
        ]
    )


def drift_run_cost_section(run: DriftRun, captured: Captured, records: int, deployment: Deployment) -> str:
    share = min(1.0, deployment.drift_memory_mb / report.FULL_VCPU_MB)
    duration = run.scoring_cpu_s / share
    memory_gb = deployment.drift_memory_mb / 1024
    gb_second = report.PRICE_PER_GB_SECOND[deployment.architecture]
    lists = len(hour_prefixes(CAPTURE_PREFIX, captured.start, captured.end))
    compute = duration * memory_gb * gb_second
    requests = report.PRICE_PER_REQUEST + captured.objects * PRICE_S3_GET + lists * PRICE_S3_LIST
    return "\n".join(
        [
            f"A daily run over {records:,} captured rows in {captured.objects} objects (one per "
            f"{deployment.buffer_seconds // 60}-minute buffer) took {run.scoring_cpu_s:.1f} s of CPU here to read "
            f"and score; DriftFunction's {deployment.drift_memory_mb} MB has {share:.2f} of a vCPU, so about "
            f"{duration:.0f} s on Lambda ({deployment.architecture}, us-east-1 prices):",
            "",
            "```",
            f"cost per run = duration * m * {gb_second} per GB-second   ({duration:.0f} s * {memory_gb:g} GB)"
            f"   = {money(compute)}",
            f"             + 1 request * {report.PRICE_PER_REQUEST * 1e6:.2f} per 1M"
            f"                          = {money(report.PRICE_PER_REQUEST)}",
            f"             + {captured.objects} S3 GETs * {PRICE_S3_GET * 1000} per 1,000 + {lists} LISTs * "
            f"{PRICE_S3_LIST * 1000} per 1,000 = {money(captured.objects * PRICE_S3_GET + lists * PRICE_S3_LIST)}",
            "```",
            "",
            f"**{money(compute + requests)} per run** at this volume; the duration grows with the rows captured "
            "in the period. The metrics cost more than the runs: 2 or 3 per feature plus 4, at $0.30 per "
            "metric-month.",
        ]
    )


def load_text() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.1f}/{five:.1f}/{fifteen:.1f}"


def measured_section(
    timings: dict[int, Timing], model_call: Timing, run: DriftRun, captured: Captured, loads: tuple[str, str]
) -> str:
    off, tenth, full = (timings[percent] for percent in PERCENTS)
    rows = [
        ["capture off, per request", f"{off.wall_us:.2f}", f"{off.cpu_us:.2f}"],
        ["capture at 10 %, per request (average)", f"{tenth.wall_us:.2f}", f"{tenth.cpu_us:.2f}"],
        [
            "capture at 100 %, per request (one Iris row, a JSON line written and flushed)",
            f"{full.wall_us:.2f}",
            f"{full.cpu_us:.2f}",
        ],
        ["the compiled model's own call on that row", f"{model_call.wall_us:.1f}", f"{model_call.cpu_us:.1f}"],
    ]
    target = report.Target(20.0)
    return "\n".join(
        [
            f"`make bench-capture` (`python -m bench.capture`) on {time.strftime('%Y-%m-%d')} "
            f"({os.cpu_count()} cores shared with other "
            f"jobs; load average 1/5/15 min {loads[0]} before, {loads[1]} after). Each figure is the best of "
            f"{ROUNDS} rounds of {CALLS:,} calls, as wall-clock and as this process's CPU time:",
            "",
            *report.table(["per request", "wall µs", "CPU µs"], rows),
            "",
            f"Capture at 100 % adds {full.cpu_us:.1f} µs of CPU to a request ({full.cpu_us / model_call.cpu_us:.0%} "
            f"of the model call's): {report.verdict(target, full.cpu_us)} (target at most {target.limit:g} µs). "
            "The target is judged on CPU time: a Lambda environment has its share of a vCPU to itself, while "
            "wall-clock time here also counts the time this machine's other jobs ran (it is "
            f"{full.wall_us / full.cpu_us:.1f} times the CPU time in this run).",
            "",
            f"`make drift` over {captured.records:,} one-row records ({captured.gzip_bytes / 1e6:.1f} MB gzip'd in "
            f"{captured.objects} objects, hour folders as Firehose writes a day), reading, scoring and writing the "
            f"report: **{run.make_drift_s:.1f} s** ({run.make_drift_cpu_s:.1f} s CPU).",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--no-write", action="store_true", help="print the sections, leave docs/drift.md alone")
    arguments = parser.parse_args()
    spec = load_spec(DEFAULT_SPEC)
    deployment = deployment_defaults()
    with tempfile.TemporaryDirectory() as scratch:
        package = Path(scratch) / "package"
        bake_model(package, "compiled", model_cache_dir(spec), spec)
        model = load_model(package / PACKAGE_MODEL_DIR)
        manifest = model.manifest
        before = load_text()
        model_call = best_us(lambda: model.predict(ROW), number=2_000)
        timings = {percent: per_call(percent, manifest) for percent in PERCENTS}
        after = load_text()
        captured = write_capture(model, arguments.records, Path(scratch) / "bucket")
        run = time_drift(package / PACKAGE_MODEL_DIR / MANIFEST_FILE, manifest, captured, Path(scratch) / "report")
    sections = {
        "capture-cost": capture_cost_section(timings[100], captured, deployment),
        "drift-run-cost": drift_run_cost_section(run, captured, arguments.records, deployment),
        "drift-measured": measured_section(timings, model_call, run, captured, (before, after)),
    }
    for name in SECTIONS:
        sys.stdout.write(f"--- {name}\n{sections[name]}\n")
    if not arguments.no_write:
        report.update_documents(PROJECT_ROOT, sections)


if __name__ == "__main__":
    main()

"""`make drift`: captured requests against the model's training profile, as a report.

Reads the objects Firehose wrote (a local folder, e.g. after `aws s3 sync`, or s3://bucket/prefix
with your AWS credentials) for a time range, scores every profiled feature and the predictions
with serving/profile.py (the code the scheduled function runs), and writes drift.html (a plot
per feature, worst first) and drift.json into --out. Exits 1 when any score is above its
threshold, so a pipeline can gate on it; 2 with one line when it cannot run.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent
for source in (PROJECT_ROOT, PROJECT_ROOT / "functions" / "predict", PROJECT_ROOT / "functions" / "drift"):
    if str(source) not in sys.path:
        sys.path.append(str(source))

from pydantic import ValidationError  # noqa: E402

from capture_objects import CaptureReadError, collect, local_objects, s3_objects, summary_of  # noqa: E402
from local.drift_report import render  # noqa: E402
from serving.manifest import MANIFEST_FILE, Manifest  # noqa: E402
from serving.profile import Thresholds, score_drift  # noqa: E402

log = logging.getLogger("drift")

DEFAULT_MANIFEST = PROJECT_ROOT / ".aws-sam" / "build" / "PredictFunction" / "model" / MANIFEST_FILE
DEFAULT_OUT = PROJECT_ROOT / "drift-report"
DEFAULT_HOURS = 24.0
REPORT_FILE, SUMMARY_FILE = "drift.html", "drift.json"
DRIFTED, FAILED = 1, 2


class DriftError(Exception):
    """`make drift` cannot run as asked; the message is one line saying why."""


def _time(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(
            f"expected an ISO 8601 time such as 2026-12-07T13:00Z, got {text!r}"
        ) from error
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("capture", help="a folder of captured objects, or s3://bucket/prefix/")
    parser.add_argument("--manifest", type=Path, default=DEFAULT_MANIFEST, help="the model's manifest.json")
    parser.add_argument("--start", type=_time, help="ISO 8601 (UTC unless an offset is given); default: --hours ago")
    parser.add_argument("--end", type=_time, help="ISO 8601; default: now")
    parser.add_argument("--hours", type=float, default=DEFAULT_HOURS, help="the range's length without --start")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder for drift.html and drift.json")
    defaults = Thresholds()
    parser.add_argument("--psi-threshold", type=float, default=defaults.psi)
    parser.add_argument("--missing-threshold", type=float, default=defaults.missing_change)
    parser.add_argument("--unknown-threshold", type=float, default=defaults.unknown_share)
    return parser.parse_args(argv)


def load_manifest(path: Path) -> Manifest:
    try:
        manifest = Manifest.model_validate_json(path.read_bytes())
    except FileNotFoundError:
        raise DriftError(f"{path} not found: run `make build` or pass --manifest path/to/manifest.json") from None
    except ValidationError as error:
        raise DriftError(f"{path} is not a valid manifest: {error.errors()[0]['msg']}") from None
    if manifest.profile is None:
        raise DriftError(f"{path} has no training profile: rebuild the model with this version (`make build`)")
    try:
        manifest.check_profile()
    except ValueError as error:
        raise DriftError(f"{path}: {error}") from None
    return manifest


def objects(capture: str, start: datetime, end: datetime) -> Iterable[tuple[str, bytes]]:
    if not capture.startswith("s3://"):
        return local_objects(Path(capture))
    import boto3

    bucket, _, prefix = capture.removeprefix("s3://").partition("/")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    return s3_objects(boto3.client("s3"), bucket, prefix, start, end)


def drift_summary(arguments: argparse.Namespace) -> dict[str, Any]:
    manifest = load_manifest(arguments.manifest)
    assert manifest.profile is not None
    end = arguments.end or datetime.now(UTC)
    start = arguments.start or end - timedelta(hours=arguments.hours)
    if start >= end:
        raise DriftError(f"the range is empty: --start {start.isoformat()} is not before --end {end.isoformat()}")
    thresholds = Thresholds(arguments.psi_threshold, arguments.missing_threshold, arguments.unknown_threshold)
    captured = collect(objects(arguments.capture, start, end), manifest, start, end)
    result = score_drift(manifest.profile, captured.columns, captured.predictions, manifest.classes, thresholds)
    return summary_of(manifest, start, end, captured, result, thresholds=thresholds.__dict__)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    arguments = parse_arguments(argv)
    started = time.perf_counter()
    try:
        summary = drift_summary(arguments)
    except (DriftError, CaptureReadError) as error:
        log.error("make drift: %s", error)
        return FAILED
    arguments.out.mkdir(parents=True, exist_ok=True)
    (arguments.out / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n")
    (arguments.out / REPORT_FILE).write_text(render(summary))
    drifted = [drift["name"] for drift in [summary["predictions"], *summary["features"]] if drift["drifted"]]
    log.info(
        "%d captured requests (%d rows) in %.1f s; %s; report: %s",
        summary["records"],
        summary["rows"],
        time.perf_counter() - started,
        f"drift in {', '.join(drifted)}" if drifted else "no drift",
        arguments.out / REPORT_FILE,
    )
    if summary["other_models"]:
        log.info("left out: records of other models or versions %s", summary["other_models"])
    return DRIFTED if drifted else 0


if __name__ == "__main__":
    sys.exit(main())

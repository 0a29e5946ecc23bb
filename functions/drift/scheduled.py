"""The scheduled drift check: the last period's capture against the training profile, as metrics.

EventBridge Scheduler invokes `handler` every DRIFT_PERIOD_HOURS hours. It reads the capture
bucket's objects for the period before the invocation (capture_objects.py), scores them with
the same code as `make drift` (serving/profile.py) and writes the scores as CloudWatch metrics
in the embedded metric format: a log line, so the function needs no cloudwatch:PutMetricData
and its role reads the capture bucket and nothing else. Per feature (dimensions FunctionName, Feature):
PSI, MissingRateChange and, for categories, UnknownShare; for the model: PredictionPSI,
MaxPSI (the largest PSI of any feature or the predictions: what the alarm watches),
DriftedScores (how many scores are above their thresholds) and CapturedRows.
"""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from capture_objects import collect, s3_objects, summary_of
from serving.bundle import bundle_manifest, download
from serving.config import s3_model_source
from serving.manifest import MANIFEST_FILE, Manifest
from serving.profile import DriftResult, Thresholds, score_drift

PACKAGE_DIR = Path(__file__).resolve().parent
FUNCTION_DIMENSION = "FunctionName"
"""The summary metrics' dimension: the function's name, which the template's alarm knows (the model's does not)."""
FEATURE_DIMENSION = "Feature"


class DriftConfigurationError(Exception):
    """The function's environment is incomplete; it names the variable."""


def _setting(name: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        raise DriftConfigurationError(f"{name} is not set: template.yaml's DriftFunction sets it")
    return value


def _profiled(manifest: Manifest, where: str) -> Manifest:
    if manifest.profile is None:
        raise DriftConfigurationError(f"{where} has no profile: rebuild the model with `make build`")
    manifest.check_profile()
    return manifest


def load_manifest(directory: Path = PACKAGE_DIR) -> Manifest:
    manifest = Manifest.model_validate_json((directory / MANIFEST_FILE).read_bytes())
    return _profiled(manifest, f"the packaged {MANIFEST_FILE}")


def served_manifest(client: Any) -> Manifest:
    """The manifest of the model the prediction function serves, whose profile and version drift is
    measured against: the pinned bundle's when the stack loads its model from ModelBucket (the same
    MODEL_S3_* settings as the prediction function), else the one packaged with the built model."""
    source = s3_model_source()
    if source is None:
        return load_manifest()
    return _profiled(bundle_manifest(download(source, client), source), f"the manifest in {source.uri}")


def _document(namespace: str, dimensions: dict[str, str], values: dict[str, float], unit: str) -> str:
    """One embedded-metric-format log line."""
    return json.dumps(
        {
            "_aws": {
                "Timestamp": int(time.time() * 1000),
                "CloudWatchMetrics": [
                    {
                        "Namespace": namespace,
                        "Dimensions": [list(dimensions)],
                        "Metrics": [{"Name": name, "Unit": unit} for name in values],
                    }
                ],
            },
            **dimensions,
            **values,
        },
        separators=(",", ":"),
    )


def metric_documents(result: DriftResult, namespace: str, function_name: str) -> list[str]:
    model = {FUNCTION_DIMENSION: function_name}
    lines = []
    for drift in result.features:
        values = {"PSI": drift.psi, "MissingRateChange": drift.missing_change}
        if drift.kind == "category":
            values["UnknownShare"] = drift.unknown_share
        lines.append(_document(namespace, {**model, FEATURE_DIMENSION: drift.name}, values, "None"))
    everything = [*result.features, result.predictions]
    summary = {
        "PredictionPSI": result.predictions.psi,
        "MaxPSI": max(drift.psi for drift in everything),
        "DriftedScores": float(sum(len(drift.drifted) for drift in everything)),
        "CapturedRows": float(result.rows),
    }
    lines.append(_document(namespace, model, summary, "None"))
    return lines


def thresholds_from_environment() -> Thresholds:
    defaults = Thresholds()
    return Thresholds(
        psi=float(os.environ.get("DRIFT_PSI_THRESHOLD") or defaults.psi),
        missing_change=float(os.environ.get("DRIFT_MISSING_THRESHOLD") or defaults.missing_change),
        unknown_share=float(os.environ.get("DRIFT_UNKNOWN_THRESHOLD") or defaults.unknown_share),
    )


def run(client: Any, manifest: Manifest, end: datetime) -> dict[str, Any]:
    """Score the period that ends at `end`, print its metrics and return the summary."""
    bucket, prefix = _setting("CAPTURE_BUCKET"), _setting("CAPTURE_PREFIX")
    start = end - timedelta(hours=float(_setting("DRIFT_PERIOD_HOURS")))
    captured = collect(s3_objects(client, bucket, prefix, start, end), manifest, start, end)
    assert manifest.profile is not None
    result = score_drift(
        manifest.profile, captured.columns, captured.predictions, manifest.classes, thresholds_from_environment()
    )
    for line in metric_documents(result, _setting("METRICS_NAMESPACE"), _setting("AWS_LAMBDA_FUNCTION_NAME")):
        sys.stdout.write(line + "\n")
    summary = summary_of(manifest, start, end, captured, result)
    # The scores only, not the distributions: the invocation's result stays small.
    for drift in [*summary["features"], summary["predictions"]]:
        for key in ("bins", "reference", "current"):
            drift.pop(key)
    return summary


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    import boto3  # provided by the Lambda runtime; imported here so that the tests import this module freely

    # EventBridge Scheduler's <aws.scheduler.scheduled-time> is the end of the period when the
    # schedule passes it; else the invocation time.
    scheduled = event.get("scheduled_time") if isinstance(event, dict) else None
    end = datetime.fromisoformat(scheduled) if scheduled else datetime.now(UTC)
    client = boto3.client("s3")
    return run(client, served_manifest(client), end)

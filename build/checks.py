"""The deployment check: held-out rows and scikit-learn's own answers to them, as the API
gives them, written at build time for the pre-traffic hook (functions/pretraffic/hook.py).

The hook calls each new version with these requests before any traffic shifts and fails
the deployment on any difference, so a version whose engine answers differently on Lambda's
hardware than scikit-learn did on the build machine never serves.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

import joblib
from numpy.typing import NDArray

from build import PROJECT_ROOT
from build.spec import ModelSpec, SpecError, add_spec_argument, load_spec
from build.train import check_rows, json_value, model_cache_dir, train_if_needed
from serving.engines.scikit_learn import as_fitted

log = logging.getLogger(__name__)

CHECKS_FILE = "checks.json"
SAMPLE_EVENT = PROJECT_ROOT / "events" / "http-api-predict.json"
MAX_ROWS = 10


def json_row(row: NDArray[Any]) -> list[Any]:
    """A row as the API takes it: numbers, category strings, and null for missing."""
    return [json_value(value) for value in row]


def check_cases(spec: ModelSpec, fitted: Any, rows: NDArray[Any]) -> list[dict[str, Any]]:
    """Requests and the answers scikit-learn gives them: one row, a batch, and for a classifier the
    batch with probabilities."""
    batch = rows[:MAX_ROWS]
    estimator = as_fitted(fitted)
    predictions = [json_value(label) for label in estimator.predict(batch)]
    instances = [json_row(row) for row in batch]
    cases: list[dict[str, Any]] = [
        {"query": "", "body": {"features": instances[0]}, "expected": {"prediction": predictions[0]}},
        {"query": "", "body": {"instances": instances}, "expected": {"predictions": predictions}},
    ]
    # Only a classifier has predict_proba, and the build has checked that the spec's task is the estimator's.
    if callable(getattr(estimator, "predict_proba", None)):
        names = spec.class_names or [str(label) for label in fitted.classes_]
        by_label = dict(zip((json_value(label) for label in fitted.classes_), names, strict=True))
        probabilities = estimator.predict_proba(batch)
        # Not mutated, equivalent: by_label's strict zip has just proved one name per class, and a probability row has
        # one value per class.
        # pragma: no mutate start
        cases.append(
            {
                "query": "probabilities=true",
                "body": {"instances": instances},
                "expected": {
                    "predictions": predictions,
                    "class_names": [by_label[label] for label in predictions],
                    "probabilities": [dict(zip(names, row.tolist(), strict=True)) for row in probabilities],
                },
            }
        )
        # pragma: no mutate end
    return cases


def build_checks(spec: ModelSpec, cache_dir: Path | None = None) -> dict[str, Any]:
    """The checks for the model the spec builds (trained or reused from the cache)."""
    result = train_if_needed(cache_dir or model_cache_dir(spec), spec)
    rows = check_rows(spec).held_out
    if not len(rows):
        raise SpecError("the deployment check needs held-out rows: give `sample_data` with `estimator_file`")
    return {
        "model": {"name": spec.name, "version": result.manifest["version"]},
        "cases": check_cases(spec, joblib.load(result.model_path), rows),
    }


def write_check_events(spec: ModelSpec, out_dir: Path) -> list[Path]:
    """The checks' requests as HTTP API events (like events/http-api-predict.json), for the build's
    smoke test: the package must answer the model's own rows, not only the sample events."""
    template = json.loads(SAMPLE_EVENT.read_text())
    paths = []
    for number, case in enumerate(build_checks(spec)["cases"]):
        event = {**template, "rawQueryString": case["query"], "body": json.dumps(case["body"])}
        event["headers"] = {key: value for key, value in template["headers"].items() if key != "content-length"}
        path = out_dir / f"model-check-{number}.json"
        path.write_text(json.dumps(event))
        paths.append(path)
    return paths


def write_checks(spec: ModelSpec, out: Path, cache_dir: Path | None = None) -> dict[str, Any]:
    """The check file for the model the spec builds (trained or reused from the cache)."""
    checks = build_checks(spec, cache_dir)
    # Not mutated, equivalent: the hook reads the check file with json.load: indentation changes no value it reads.
    out.write_text(json.dumps(checks, indent=1) + "\n")  # pragma: no mutate
    log.info("wrote %d deployment checks for %s %s to %s", len(checks["cases"]), spec.name, checks["model"], out)
    return checks


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, required=True, help="the check file to write")
    add_spec_argument(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[build] %(message)s", stream=sys.stdout)
    try:
        write_checks(load_spec(args.spec), args.out)
    except SpecError as error:
        log.error("build failed: %s", error)
        raise SystemExit(1) from error


if __name__ == "__main__":
    main()

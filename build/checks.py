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
import math
import sys
from pathlib import Path
from typing import Any

import joblib
import numpy as np
from numpy.typing import NDArray

from build import configured_spec_path
from build.package import model_cache_dir
from build.spec import ModelSpec, SpecError, load_spec
from build.train import check_rows, train_if_needed

log = logging.getLogger(__name__)

CHECKS_FILE = "checks.json"
MAX_ROWS = 10


def json_row(row: NDArray[Any]) -> list[Any]:
    """A row as the API takes it: numbers, category strings, and null for missing."""
    return [None if isinstance(value, float) and math.isnan(value) else value for value in row.tolist()]


def json_value(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def check_cases(spec: ModelSpec, estimator: Any, rows: NDArray[Any]) -> list[dict[str, Any]]:
    """Requests and the answers scikit-learn gives them: one row, a batch, and for a classifier the
    batch with probabilities."""
    batch = rows[:MAX_ROWS]
    predictions = [json_value(label) for label in estimator.predict(batch)]
    instances = [json_row(row) for row in batch]
    cases: list[dict[str, Any]] = [
        {"query": "", "body": {"features": instances[0]}, "expected": {"prediction": predictions[0]}},
        {"query": "", "body": {"instances": instances}, "expected": {"predictions": predictions}},
    ]
    if spec.task == "classification":
        names = spec.class_names or [str(label) for label in estimator.classes_]
        by_label = dict(zip((json_value(label) for label in estimator.classes_), names, strict=True))
        probabilities = estimator.predict_proba(batch)
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
    return cases


def write_checks(spec: ModelSpec, out: Path, cache_dir: Path | None = None) -> dict[str, Any]:
    """The check file for the model the spec builds (trained or reused from the cache)."""
    result = train_if_needed(cache_dir or model_cache_dir(spec), spec)
    rows = check_rows(spec).held_out
    if not len(rows):
        raise SpecError("the deployment check needs held-out rows: give `sample_data` with `estimator_file`")
    checks = {
        "model": {"name": spec.name, "version": result.manifest["version"]},
        "cases": check_cases(spec, joblib.load(result.model_path), rows),
    }
    out.write_text(json.dumps(checks, indent=1) + "\n")
    log.info("wrote %d deployment checks for %s %s to %s", len(checks["cases"]), spec.name, checks["model"], out)
    return checks


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, required=True, help="the check file to write")
    parser.add_argument(
        "--spec",
        type=Path,
        default=configured_spec_path(),
        help="the model spec (default: $MODEL, else models/iris.toml)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[build] %(message)s", stream=sys.stdout)
    try:
        write_checks(load_spec(args.spec), args.out)
    except SpecError as error:
        log.error("build failed: %s", error)
        raise SystemExit(1) from error


if __name__ == "__main__":
    main()

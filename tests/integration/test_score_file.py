"""`make score`'s script on the built package: a generated file in, predictions equal to the
trained estimator's (the engine's contract) and every bad row in the errors file."""

from __future__ import annotations

import csv
import json
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from local.lambda_local import PROJECT_ROOT

SCORE = PROJECT_ROOT / "local" / "score.py"


def run_score(package: Path, source: Path, output: Path, *options: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, str(SCORE), "--package", str(package), *options, str(source), str(output)]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize("kind", [".csv", ".jsonl"])
def test_a_file_is_scored_like_the_estimator_with_bad_rows_reported(
    package: Path, manifest: dict[str, Any], training_estimator: Any, tmp_path: Path, kind: str
) -> None:
    names = [feature["name"] for feature in manifest["features"]]
    generator = random.Random(10)
    good = [[round(generator.uniform(0, 8), 1) for _ in names] for _ in range(25_000)]
    bad_at = set(generator.sample(range(len(good)), 20))
    rows: list[dict[str, Any]] = []
    for index, values in enumerate(good):
        row: dict[str, Any] = {"id": f"r{index}", **dict(zip(names, values, strict=True))}
        if index in bad_at:
            row[names[index % len(names)]] = "n/a"
        rows.append(row)
    source = tmp_path / f"rows{kind}"
    with source.open("w", newline="") as stream:
        if kind == ".csv":
            writer = csv.DictWriter(stream, ["id", *names])
            writer.writeheader()
            writer.writerows(rows)
        else:
            stream.writelines(json.dumps(row) + "\n" for row in rows)
    output = tmp_path / f"predictions{kind}"

    result = run_score(package, source, output, "--probabilities")

    assert result.returncode == 0, result.stderr
    read = (
        (lambda path: list(csv.DictReader(path.read_text().splitlines())))
        if kind == ".csv"
        else (lambda path: [json.loads(line) for line in path.read_text().splitlines()])
    )
    predictions, errors = read(output), read(output.with_name(f"predictions.errors{kind}"))
    kept = [index for index in range(len(good)) if index not in bad_at]
    assert [item["id"] for item in predictions] == [f"r{index}" for index in kept]
    assert [int(item["row"]) for item in errors] == sorted(index + 1 for index in bad_at)
    assert all('Input should be a valid number (got "n/a")' in item["error"] for item in errors)
    expected = training_estimator.predict(np.array([good[index] for index in kept]))
    assert [str(item["prediction"]) for item in predictions] == [str(label) for label in expected.tolist()]
    probabilities = training_estimator.predict_proba(np.array([good[index] for index in kept]))
    classes = manifest["class_names"]
    assert np.array_equal(np.array([[float(item[name]) for name in classes] for item in predictions]), probabilities)
    assert f"{len(kept):,} predicted" in result.stderr


def test_a_missing_input_fails_with_one_line_and_writes_nothing(package: Path, tmp_path: Path) -> None:
    result = run_score(package, tmp_path / "absent.csv", tmp_path / "out.csv")

    assert result.returncode == 1
    assert result.stderr.strip().endswith("absent.csv: no such file")
    assert list(tmp_path.iterdir()) == []


def run_bench(*options: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "bench.scoring", *options]
    return subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=600, check=False)


def test_the_scoring_bench_times_both_programs_on_the_same_files_and_writes_nothing(package: Path) -> None:
    documents = [PROJECT_ROOT / "README.md", PROJECT_ROOT / "docs" / "scoring.md"]
    before = [document.read_text() for document in documents]

    result = run_bench("--rows", "300", "3000", "--rounds", "1", "--no-write", "--package", str(package))

    assert result.returncode == 0, result.stderr
    rows = [
        cells(line) for line in result.stdout.splitlines() if line.startswith("| make score") or "predict loop" in line
    ]
    assert sorted((row[0].split()[0], row[1]) for row in rows) == [
        ("make", "3,000"), ("make", "300"), ("scikit-learn", "3,000"), ("scikit-learn", "300")
    ]  # fmt: skip
    assert all(float(row[3].replace(",", "")) > 0 and float(row[4]) > 0 for row in rows)
    assert "against scikit-learn's loop on the same file" in result.stdout
    assert "| rows/s per concurrent function (" in result.stdout
    assert [document.read_text() for document in documents] == before


def cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]

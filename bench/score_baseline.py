"""The scoring benchmark's baseline: scikit-learn's own `predict` over a CSV, as a user would
loop it with the standard library (csv.reader, chunks of CHUNK_ROWS rows, csv.writer), with no
validation at all. Run by bench/scoring.py in a process of its own:

    python bench/score_baseline.py MODEL.joblib rows.csv predictions.csv FEATURE [FEATURE ...]
"""

from __future__ import annotations

import csv
import itertools
import sys
from pathlib import Path

import joblib
import numpy as np

CHUNK_ROWS = 10_000  # as local/score.py reads


def main(model: Path, source: Path, output: Path, features: list[str]) -> None:
    estimator = joblib.load(model)
    with source.open(newline="") as rows_in, output.open("w", newline="") as out:
        reader = csv.reader(rows_in)
        header = next(reader)
        id_at, positions = header.index("id"), [header.index(name) for name in features]
        writer = csv.writer(out)
        writer.writerow(["id", "prediction"])
        while chunk := list(itertools.islice(reader, CHUNK_ROWS)):
            values = np.array([[float(row[at]) for at in positions] for row in chunk])
            labels = estimator.predict(values).tolist()
            writer.writerows(zip([row[id_at] for row in chunk], labels, strict=True))


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4:])

"""A scikit-learn Pipeline: preprocessing steps (serving/engines/preprocessing.py) and then any
compiled engine, stored under `<prefix>final/`, so forests, linear models and boosting all work."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from serving.engines.base import Arrays, Engine, check_format_version, check_width
from serving.engines.preprocessing import load_step

FORMAT_VERSION = 1


class PipelineEngine:
    """Pipeline.predict and predict_proba: each step's transform, then the final engine's."""

    def __init__(self, arrays: Arrays, prefix: str) -> None:
        # Imported here: serving.engines imports this module to register it.
        from serving.engines import load_engine

        check_format_version(arrays, prefix, "pipeline", FORMAT_VERSION)
        self.n_features = int(arrays[prefix + "n_features"])
        self.steps = [load_step(arrays, f"{prefix}steps/{index}/") for index in range(int(arrays[prefix + "n_steps"]))]
        self.final: Engine = load_engine(arrays, prefix + "final/")
        self.classes: NDArray[Any] | None = self.final.classes

    def _transformed(self, rows: NDArray[Any]) -> NDArray[Any]:
        check_width(rows, self.n_features)
        for step in self.steps:
            rows = step.transform(rows)
        return rows

    def predict(self, rows: NDArray[Any]) -> NDArray[Any]:
        return self.final.predict(self._transformed(rows))

    def predict_proba(self, rows: NDArray[Any]) -> NDArray[np.float64]:
        if self.classes is None:
            raise TypeError("predict_proba is only defined for classifiers")
        return self.final.predict_proba(self._transformed(rows))

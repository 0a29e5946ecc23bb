"""Compiled engines: fitted scikit-learn models turned into plain arrays (by build/engines/)
and evaluated here with numpy alone, answering exactly as scikit-learn does.

Every engine implements `Engine` (serving/engines/base.py) fully, so callers never probe
with getattr. An engine's arrays live in one flat mapping (one `.npz`, read with
allow_pickle=False) under a key prefix, so a pipeline can hold its steps' arrays and its
final estimator's side by side: `<prefix>engine` names the kind, and `load_engine` builds
the engine from the rest.
"""

from __future__ import annotations

from collections.abc import Callable

from serving.engines.base import ENGINE_KEY, Arrays, Engine, unprefixed
from serving.engines.linear import LinearEngine
from serving.engines.pipeline import PipelineEngine
from serving.engines.tree_engine import TreeEngine
from serving.engines.trees import ENGINE as TREES

__all__ = ["ENGINE_KEY", "Arrays", "Engine", "load_engine"]

EngineLoader = Callable[[Arrays, str], Engine]


# One line per kind of engine: its name in `<prefix>engine` and how to build it.
LOADERS: dict[str, EngineLoader] = {
    TREES: TreeEngine.from_arrays,
    "linear": lambda arrays, prefix: LinearEngine(unprefixed(arrays, prefix)),
    "pipeline": PipelineEngine,
}


def load_engine(arrays: Arrays, prefix: str = "") -> Engine:
    """The engine stored under `prefix` in `arrays`."""
    kind = str(arrays[prefix + ENGINE_KEY])
    try:
        loader = LOADERS[kind]
    except KeyError:
        raise ValueError(f"unknown compiled engine {kind!r}; this function knows {sorted(LOADERS)}") from None
    return loader(arrays, prefix)

"""What every test shares: one thread per library, the hypothesis profiles, the tree engine's C walk
built as the build builds it (serving/engines/native.py), so the tests run the walk that ships, and
the garbage collector's frozen start.

The property tests and fuzzers give no example count of their own: the profile does. `ci` (the
default, what `make test` runs) keeps the suite within minutes; `deep` (`make fuzz`, set by
HYPOTHESIS_PROFILE) is the one to run before an issue that touches validation, events or the
engines is called done. Derandomized in `ci`, so a run fails or passes as the last one did.
"""

from __future__ import annotations

import gc
import os

from hypothesis import HealthCheck, settings

# One thread per test process for OpenMP and OpenBLAS (scikit-learn's HistGradientBoosting, XGBoost,
# LightGBM, numpy): pytest-xdist already runs a process per core, so a library's extra threads only
# wait for each other, and spin while they wait: a HistGradientBoosting fit cost 7-25 times the CPU
# of one thread with two test workers on this 2-core machine. The libraries read these when they
# load, after this conftest (the first one pytest imports; no plugin imports them); the cold starts
# the tests spawn inherit them.
for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(variable, "1")

# Generated inputs go through a whole handler or a fitted model: slow per example, and slower on a
# loaded machine. The example count bounds a test's time, never a deadline per example.
COMMON = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large]}

settings.register_profile("ci", max_examples=30, derandomize=True, database=None, print_blob=True, **COMMON)
settings.register_profile("deep", max_examples=1_000, **COMMON)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def pytest_configure() -> None:
    # Imported here: numpy (which build.native imports) reads the thread settings above when it loads.
    from build import HOST_ARCHITECTURE
    from build.native import compile_tree_walk

    compile_tree_walk(HOST_ARCHITECTURE)


def pytest_collection_finish() -> None:
    # Every test module and what it imports (scikit-learn, pandas, moto's service models, FastAPI:
    # millions of objects) is loaded now and lives to the end of the run. Frozen, it is left out of
    # the garbage collector's full passes, which walked all of it again and again: 5-12 % of the
    # inner loop's CPU. The function does the same after its cold start (app.py).
    gc.freeze()

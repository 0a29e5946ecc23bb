"""`make mutate`: mutation testing of the critical modules with mutmut, then a score per module.

mutmut names a mutant after its file's path (functions/predict/serving/model.py gives
`functions.predict.serving.model`) and switches it on only where the running function's
`__module__` equals that name. The Lambda roots are on sys.path (the package's layout), so the
code runs as `serving.model` and `hook`: this wrapper strips the roots from mutmut's names and
then hands its arguments to mutmut's own command line. What is mutated and which tests may kill
it is configured in pyproject.toml ([tool.mutmut]); docs/mutation.md says how to read the results.

    python tests/mutate.py run [MUTANT_GLOB...]   mutate for at most MUTATE_MINUTES, then score
    python tests/mutate.py score                  the score of the results so far
    python tests/mutate.py equivalents            the mutants counted as equivalent, and why
    python tests/mutate.py show NAME              any other mutmut command (show, apply, results)

mutmut keeps every verdict in mutants/ until the mutated function or its tests change, so each
run goes on where the last one stopped: `run` stops after its time budget and scores what has
been checked (the rest is counted as "not checked").
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

# Run as a script, not as `-m tests.mutate`: the tests run on mutmut's copy of the project in
# mutants/, and a `tests` package imported from here first would hide its conftest there. The
# project root goes first on sys.path, as for pytest; mutmut then swaps it for mutants/.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# mutmut forks a process per mutant from one that has run scikit-learn: an OpenMP thread pool
# (HistGradientBoosting's) does not survive a fork, and the child hangs on its lock. One thread
# per process never starts the pool. Set before anything imports scikit-learn.
os.environ["OMP_NUM_THREADS"] = "1"
# Every mutant runs in a fresh pytest session: the session fixtures keep their trained models here
# (tests/conftest.py's TRAINING_CACHE_ENV), outside mutants/ so that a new mutmut copy reuses them,
# and a mutant's run costs its tests rather than retraining. `make clean` removes it.
# setdefault: pytest imports this file again from mutants/ as a plugin, and the cache stays put.
os.environ.setdefault("MUTATE_TRAINING_CACHE", str(Path(__file__).resolve().parents[1] / ".model-cache" / "mutate"))
# Every pytest session reads every installed distribution's metadata to find plugins to load and
# to rewrite: about a fifth of a mutant's time, with aws-sam-cli's dependencies installed. The
# mutation run starts thousands of sessions, so it names the plugins instead: those that
# requirements-dev.txt installs (tests/unit/test_mutate_plugin.py checks that none is missing).
os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
os.environ["PYTEST_PLUGINS"] = ",".join(
    (
        "_hypothesis_pytestplugin",
        "anyio.pytest_plugin",
        "platformdirs.pytest_plugin",
        "pytest_cov.plugin",
        "schemathesis.pytest.plugin",
    )
)

import mutmut
import mutmut.__main__ as mutmut_cli
import pytest
from _pytest.fixtures import FixtureDef, SubRequest
from _pytest.nodes import Item
from mutmut.__main__ import PytestRunner
from mutmut.configuration import Config
from mutmut.mutation.data import SourceFileMutationData
from mutmut.utils.format_utils import get_mutant_name

# mutmut's own, before main() replaces it with run_mutant_tests_in_two_sessions.
mutmut_run_tests = PytestRunner.run_tests

# The directories Lambda puts on sys.path, as mutmut spells them in a mutant's name.
LAMBDA_ROOTS = ("functions.predict.", "functions.pretraffic.")
# A run's budget: under 30 minutes with mutant generation, the test passes and the score.
DEFAULT_MINUTES = 25.0
# How many of a mutant's fastest tests run in its first pytest session.
FIRST_SESSION_TESTS = 8
# The share of scored mutants a module's tests must kill (issue 13).
TARGET_SCORE = 0.90
# Statuses that are not a verdict on the tests: excluded from the score, listed in the table.
UNSCORED = frozenset({"skipped", "not checked", "check was interrupted by user", "equivalent"})
# Surviving mutants that cannot change what the code does, by module and mutated line, and why.
# A survivor whose line is listed counts as "equivalent"; once the line changes it counts as a
# survivor again, to be looked at afresh.
EQUIVALENT_MUTANTS: dict[tuple[str, str], str] = {
    (
        "functions/predict/serving/model.py",
        "with np.load(io.BytesIO(payload), allow_pickle=None) as stored:",
    ): "np.load tests `if not allow_pickle`: None refuses pickles as False does",
    (
        "functions/predict/serving/model.py",
        "with np.load(io.BytesIO(payload), ) as stored:",
    ): "np.load's allow_pickle defaults to False: the argument states it, it does not change it",
    (
        "functions/predict/serving/model.py",
        'recorded = {"feature_names": sklearn_engine.feature_names, "XXclass_namesXX": None}',
    ): "None means not recorded: _check_interface skips the entry before it reads its key",
    (
        "functions/predict/serving/model.py",
        'recorded = {"feature_names": sklearn_engine.feature_names, "CLASS_NAMES": None}',
    ): "None means not recorded: _check_interface skips the entry before it reads its key",
    (
        "functions/predict/serving/engines/preprocessing.py",
        'self.unknown_is_error = arrays["unknown_is_error"].astype(None)',
    ): "read only for its truth: float 1.0 and 0.0 are as true and false as the booleans",
    (
        "functions/predict/serving/engines/preprocessing.py",
        "{category: index for index, category in enumerate(categories) if not _is_missing(None)}",
    ): "NaN joins the lookup but is never looked up: missing values are mapped first, and NaN sorts last",
    (
        "functions/predict/serving/engines/linear.py",
        'with np.errstate(over="ignore", invalid=None):',
    ): "no decision makes exp or the division invalid: ±inf and NaN pass silently, warnings as errors",
    (
        "functions/predict/serving/engines/linear.py",
        'with np.errstate(over="ignore", ):',
    ): "no decision makes exp or the division invalid: ±inf and NaN pass silently, warnings as errors",
    (
        "functions/predict/serving/engines/links.py",
        "for index in np.flatnonzero(~(np.abs(decision.reshape(-1)) <= COMPLEX_EXP_LIMIT)):",
    ): "at |d| = 700 the complex exp is libm's exp (glibc scales above ~709): the same bits",
    (
        "build/engines/values.py",
        "if is_missing(None):",
    ): 'NaN is a float: stored as kind "f" it is read back as float NaN, as kind "n" is',
    (
        "build/engines/values.py",
        "pairs = list(zip(values, kinds, strict=None))",
    ): "kinds is built from values one by one: the two always have the same length",
    (
        "build/engines/values.py",
        "pairs = list(zip(values, kinds, strict=False))",
    ): "kinds is built from values one by one: the two always have the same length",
    (
        "build/engines/values.py",
        "pairs = list(zip(values, kinds, ))",
    ): "kinds is built from values one by one: the two always have the same length",
    (
        "build/engines/linear.py",
        "rows = [reference, center - rng.normal(size=(500, n_features)) * 3 * spread]",
    ): "normal noise is symmetric: the centre minus it is as random as the centre plus it",
    (
        "build/engines/values.py",
        'key: np.array([value if kind == "s" else "" for value, kind in pairs], dtype=None),',
    ): "a list of Python strings makes a unicode array by default, as dtype=str does",
    (
        "build/engines/values.py",
        'key: np.array([value if kind == "s" else "" for value, kind in pairs], ),',
    ): "a list of Python strings makes a unicode array by default, as dtype=str does",
    (
        "build/engines/values.py",
        'key: np.array([value if kind == "s" else "XXXX" for value, kind in pairs], dtype=str),',
    ): 'the strings array is read only where the kind is "s": the filler is never seen',
    (
        "build/engines/values.py",
        'key + NUMBERS_SUFFIX: np.array([value if kind == "f" else 0.0 for value, kind in pairs], dtype=None),',
    ): "a list of Python floats makes a float64 array by default",
    (
        "build/engines/values.py",
        'key + NUMBERS_SUFFIX: np.array([value if kind == "f" else 0.0 for value, kind in pairs], ),',
    ): "a list of Python floats makes a float64 array by default",
    (
        "build/engines/values.py",
        'key + NUMBERS_SUFFIX: np.array([value if kind == "f" else 1.0 for value, kind in pairs], dtype=np.float64),',
    ): 'the numbers array is read only where the kind is "f": the filler is never seen',
    (
        "build/engines/values.py",
        "key + KINDS_SUFFIX: np.array(kinds, dtype=None),",
    ): "the kinds are one-character strings: the default dtype is <U1 too",
    (
        "build/engines/values.py",
        "key + KINDS_SUFFIX: np.array(kinds, ),",
    ): "the kinds are one-character strings: the default dtype is <U1 too",
    (
        "build/engines/linear.py",
        "for extreme in (0.0, -0.0, 1e10, -1e10, 1e+300, -1e300):",
    ): "mutmut's 1e300 + 1 is 1e300 in float64: the same literal",
    (
        "build/engines/linear.py",
        "for extreme in (0.0, -0.0, 1e10, -1e10, 1e300, -1e+300):",
    ): "mutmut's 1e300 + 1 is 1e300 in float64: the same literal",
    (
        "build/engines/linear.py",
        "targets = np.concatenate([np.linspace(-800, 800, 81), [+COMPLEX_EXP_LIMIT, COMPLEX_EXP_LIMIT]])",
    ): "the sweep has -700 already: linspace's every 20 from -800 includes it",
    (
        "build/engines/linear.py",
        '"kind": np.array("classifier" if is_classifier else "XXregressorXX"),',
    ): 'serving/engines/linear.py reads only kind == "classifier": any other word is a regressor',
    (
        "build/engines/linear.py",
        '"kind": np.array("classifier" if is_classifier else "REGRESSOR"),',
    ): 'serving/engines/linear.py reads only kind == "classifier": any other word is a regressor',
    (
        "build/engines/__init__.py",
        'worst = float(np.max(np.abs(expected_proba - actual_proba))) if same_shape else float("NAN")',
    ): 'float() reads "nan" in any case: "NAN" is the same NaN',
    (
        "build/engines/__init__.py",
        "return all(type(a) is type(b) and a == b for a, b in zip(expected.ravel(), actual.ravel(), strict=None))",
    ): "the shapes were found equal just before: the two ravels always have the same length",
    (
        "build/engines/__init__.py",
        "return all(type(a) is type(b) and a == b for a, b in zip(expected.ravel(), actual.ravel(), strict=False))",
    ): "the shapes were found equal just before: the two ravels always have the same length",
    (
        "build/engines/__init__.py",
        "return all(type(a) is type(b) and a == b for a, b in zip(expected.ravel(), actual.ravel(), ))",
    ): "the shapes were found equal just before: the two ravels always have the same length",
    (
        "build/engines/base.py",
        'with zipfile.ZipFile(buffer, "w", ) as archive:',
    ): "ZipFile's default compression is ZIP_STORED: the argument states it",
    (
        "build/engines/base.py",
        'with archive.open(member, "w", force_zip64=None) as stream:',
    ): "only a member over 2 GiB needs zip64, and a Lambda package is under 250 MB",
    (
        "build/engines/base.py",
        'with archive.open(member, "w", force_zip64=False) as stream:',
    ): "only a member over 2 GiB needs zip64, and a Lambda package is under 250 MB",
    (
        "build/engines/linear.py",
        "rows.append(base - np.outer(targets, weights / norm))",
    ): "the sweep's targets are symmetric about 0 (-800..800 and ±700): the same rows, in another order",
    (
        "build/engines/pipeline.py",
        "return float(max(known, default=0.0)) + 2.0",
    ): "two above the largest known category is as unknown as one above it",
    (
        "build/engines/pipeline.py",
        "return float(max(known, default=1.0)) + 1.0",
    ): "the default is read only when no category is known: any number is unknown then",
    (
        "build/engines/pipeline.py",
        'unknown = "XXunknownXX"',
    ): "the loop below makes any starting string one no category equals",
    (
        "build/engines/pipeline.py",
        'unknown = "UNKNOWN"',
    ): "the loop below makes any starting string one no category equals",
    (
        "build/engines/pipeline.py",
        'if categories.dtype.kind in "XXiufXX":',
    ): "a dtype kind is one letter, never X: the same test",
    (
        "build/engines/pipeline.py",
        "known = [value for value in categories.tolist() if not is_missing(None)]",
    ): "scikit-learn sorts NaN last, where max passes over it, and no string equals NaN",
    (
        "build/checks.py",
        'out.write_text(json.dumps(checks, indent=None) + "\\n")',
    ): "the hook reads the check file with json.load: indentation changes no value it reads",
    (
        "build/checks.py",
        'out.write_text(json.dumps(checks, indent=2) + "\\n")',
    ): "the hook reads the check file with json.load: indentation changes no value it reads",
    (
        "build/checks.py",
        'out.write_text(json.dumps(checks, ) + "\\n")',
    ): "the hook reads the check file with json.load: indentation changes no value it reads",
    (
        "build/checks.py",
        '"probabilities": [dict(zip(names, row.tolist(), strict=None)) for row in probabilities],',
    ): "by_label's strict zip has just proved one name per class, and a probability row has one value per class",
    (
        "build/checks.py",
        '"probabilities": [dict(zip(names, row.tolist(), strict=False)) for row in probabilities],',
    ): "by_label's strict zip has just proved one name per class, and a probability row has one value per class",
    (
        "build/checks.py",
        '"probabilities": [dict(zip(names, row.tolist(), )) for row in probabilities],',
    ): "by_label's strict zip has just proved one name per class, and a probability row has one value per class",
    (
        "build/bake.py",
        "with np.load(io.BytesIO(payload), allow_pickle=True) as stored:",
    ): "the payload was just written by serialize, which refuses object arrays: it holds no pickle to refuse",
    (
        "build/bake.py",
        "with np.load(io.BytesIO(payload), allow_pickle=None) as stored:",
    ): "the payload was just written by serialize, which refuses object arrays: it holds no pickle to refuse",
    (
        "build/bake.py",
        "with np.load(io.BytesIO(payload), ) as stored:",
    ): "the payload was just written by serialize, which refuses object arrays: it holds no pickle to refuse",
    (
        "build/package.py",
        "log.info(report.render())",
    ): "the report holds no %: logging prints it the same as through %s",
    (
        "build/package.py",
        'log.info("leaving out %s: the Lambda runtime provides it (%s)", name, line.rpartition("#")[2].strip())',
    ): "pip-compile's line annotation has one #: the text after the first and after the last is the same",
    (
        "build/package.py",
        'filtered = target / "XXrequirements.txtXX"',
    ): "the file's name is never read: its path is returned to pip, the only reader",
    (
        "build/package.py",
        'filtered = target / "REQUIREMENTS.TXT"',
    ): "the file's name is never read: its path is returned to pip, the only reader",
    (
        "build/package.py",
        'name = _normalise(match[1]) if match else "XXXX"',
    ): "a line that pins nothing is kept either way: no package set holds the name XXXX, nor an empty one",
    (
        "functions/predict/serving/schemas.py",
        '"XXfloat32_rangeXX", "Input should be within ±3.4e38, the range the model compares features in"',
    ): "pydantic's error type is read only to skip quoting a missing field's input: no client or log sees it",
    (
        "functions/predict/serving/schemas.py",
        '"FLOAT32_RANGE", "Input should be within ±3.4e38, the range the model compares features in"',
    ): "pydantic's error type is read only to skip quoting a missing field's input: no client or log sees it",
    (
        "functions/predict/serving/schemas.py",
        'raise PydanticCustomError("XXcategoryXX", "{accepted}", {"accepted": message})',
    ): "pydantic's error type is read only to skip quoting a missing field's input: no client or log sees it",
    (
        "functions/predict/serving/schemas.py",
        'raise PydanticCustomError("CATEGORY", "{accepted}", {"accepted": message})',
    ): "pydantic's error type is read only to skip quoting a missing field's input: no client or log sees it",
    (
        "functions/predict/serving/schemas.py",
        '_typed_dict("XXNamedRowXX", dict(zip(self.feature_names, types, strict=True)))',
    ): "the TypedDict's name is in no message and no published schema (openapi_body writes NamedRow itself)",
    (
        "functions/predict/serving/schemas.py",
        '_typed_dict("namedrow", dict(zip(self.feature_names, types, strict=True)))',
    ): "the TypedDict's name is in no message and no published schema (openapi_body writes NamedRow itself)",
    (
        "functions/predict/serving/schemas.py",
        '_typed_dict("NAMEDROW", dict(zip(self.feature_names, types, strict=True)))',
    ): "the TypedDict's name is in no message and no published schema (openapi_body writes NamedRow itself)",
    (
        "functions/predict/serving/schemas.py",
        '_typed_dict("NamedRow", dict(zip(self.feature_names, types, strict=None)))',
    ): "names and types are both made from self.features: always the same length",
    (
        "functions/predict/serving/schemas.py",
        '_typed_dict("NamedRow", dict(zip(self.feature_names, types, )))',
    ): "names and types are both made from self.features: always the same length",
    (
        "functions/predict/serving/schemas.py",
        '_typed_dict("NamedRow", dict(zip(self.feature_names, types, strict=False)))',
    ): "names and types are both made from self.features: always the same length",
    (
        "functions/predict/serving/schemas.py",
        '"properties": dict(zip(self.feature_names, values, strict=None)),',
    ): "names and value schemas are both made from self.features: always the same length",
    (
        "functions/predict/serving/schemas.py",
        '"properties": dict(zip(self.feature_names, values, )),',
    ): "names and value schemas are both made from self.features: always the same length",
    (
        "functions/predict/serving/schemas.py",
        '"properties": dict(zip(self.feature_names, values, strict=False)),',
    ): "names and value schemas are both made from self.features: always the same length",
    (
        "functions/predict/serving/schemas.py",
        "named_example = dict(zip(self.feature_names, row, strict=None))",
    ): "the example is the manifest's, whose validator makes it one value per feature",
    (
        "functions/predict/serving/schemas.py",
        "named_example = dict(zip(self.feature_names, row, ))",
    ): "the example is the manifest's, whose validator makes it one value per feature",
    (
        "functions/predict/serving/schemas.py",
        "named_example = dict(zip(self.feature_names, row, strict=False))",
    ): "the example is the manifest's, whose validator makes it one value per feature",
    (
        "functions/predict/serving/schemas.py",
        "classes = zip(manifest.classes, manifest.class_names, strict=None)",
    ): "the manifest's validator refuses class_names and classes of different lengths",
    (
        "functions/predict/serving/schemas.py",
        "classes = zip(manifest.classes, manifest.class_names, )",
    ): "the manifest's validator refuses class_names and classes of different lengths",
    (
        "functions/predict/serving/schemas.py",
        "classes = zip(manifest.classes, manifest.class_names, strict=False)",
    ): "the manifest's validator refuses class_names and classes of different lengths",
    (
        "functions/predict/serving/engines/linear.py",
        "exponent = np.zeros(decision.shape, dtype=None)",
    ): "numpy's float exp is libm's on CPUs without AVX-512 (this one): the same bits; AVX-512 CPUs kill it",
    (
        "functions/predict/serving/engines/linear.py",
        "exponent = np.zeros(decision.shape, )",
    ): "numpy's float exp is libm's on CPUs without AVX-512 (this one): the same bits; AVX-512 CPUs kill it",
    (
        "build/engines/pipeline.py",
        "unknown = None",
    ): "None is no category (categories holding None do not compile): encoders answer it as any unknown word",
    (
        "build/engines/pipeline.py",
        'unknown += "XX?XX"',
    ): "any suffix that makes a word no category will do: the loop stops at the first such word",
    (
        "build/engines/pipeline.py",
        'operations = [("multiply", step.scale_), ("add", step.min_)]',
    ): "the list is empty before MinMaxScaler's operations: = and += give the same list",
    (
        "build/engines/pipeline.py",
        "edges = [step.data_min_, step.data_max_]",
    ): "the list is empty before MinMaxScaler's edges: = and += give the same list",
    (
        "build/engines/pipeline.py",
        "for source, value in zip(columns.sources, values, strict=None):",
    ): "a scaler's fitted values have one entry per input column: the lengths are equal",
    (
        "build/engines/pipeline.py",
        "for source, value in zip(columns.sources, values, ):",
    ): "a scaler's fitted values have one entry per input column: the lengths are equal",
    (
        "build/engines/pipeline.py",
        "for source, value in zip(columns.sources, values, strict=False):",
    ): "a scaler's fitted values have one entry per input column: the lengths are equal",
    (
        "build/engines/pipeline.py",
        '"operations": np.array([name for name, _ in operations], dtype=None),',
    ): "numpy infers a unicode array from Python strings (an empty list is never read: no operations)",
    (
        "build/engines/pipeline.py",
        '"operations": np.array([name for name, _ in operations], ),',
    ): "numpy infers a unicode array from Python strings (an empty list is never read: no operations)",
    (
        "build/engines/pipeline.py",
        '"clip": np.array(clip, dtype=None),',
    ): "np.clip with integer bounds (feature_range=(0, 1)) gives the same floats as with float bounds",
    (
        "build/engines/pipeline.py",
        '"clip": np.array(clip, ),',
    ): "np.clip with integer bounds (feature_range=(0, 1)) gives the same floats as with float bounds",
    (
        "build/engines/pipeline.py",
        'arrays[f"operand_{index}"] = np.asarray(operand, dtype=None)',
    ): "a scaler's fitted statistics are float64 arrays already",
    (
        "build/engines/pipeline.py",
        'arrays[f"operand_{index}"] = np.asarray(operand, )',
    ): "a scaler's fitted statistics are float64 arrays already",
    (
        "build/engines/pipeline.py",
        "probe = np.empty((table_rows + 2, len(categories)), dtype=object)",
    ): "a second unknown row (None) is transformed and never read: the table takes row table_rows only",
    (
        "build/engines/pipeline.py",
        "probe[table_rows, index] = None",
    ): "None is no category (categories holding None do not compile): encoders answer it as any unknown value",
    (
        "build/engines/pipeline.py",
        'warnings.simplefilter("ignore", )',
    ): "only OneHotEncoder's UserWarning about ignored unknown categories is raised there",
    (
        "build/engines/pipeline.py",
        "unknown_row = np.zeros((2, offsets[-1])) if unknown_is_error else step.transform(probe[table_rows:])",
    ): "a second zero row is never read: the table takes row table_rows only",
    (
        "build/engines/pipeline.py",
        '"labels": np.array(columns.labels, dtype=None),',
    ): "numpy infers a unicode array from the labels, Python strings, and an encoder has at least one",
    (
        "build/engines/pipeline.py",
        '"labels": np.array(columns.labels, ),',
    ): "numpy infers a unicode array from the labels, Python strings, and an encoder has at least one",
    (
        "build/engines/pipeline.py",
        'numeric = column.dtype.kind in "XXiufXX"',
    ): "no dtype kind is X: the same kinds are numbers",
    (
        "build/engines/pipeline.py",
        'elif step.strategy not in ("mean", "median"):',
    ): "a numeric imputer's rows are floats (or objects holding them): converted first or not, the same bits",
    (
        "build/engines/pipeline.py",
        'elif step.strategy in ("XXmeanXX", "median"):',
    ): "a numeric imputer's rows are floats (or objects holding them): converted first or not, the same bits",
    (
        "build/engines/pipeline.py",
        'elif step.strategy in ("MEAN", "median"):',
    ): "a numeric imputer's rows are floats (or objects holding them): converted first or not, the same bits",
    (
        "build/engines/pipeline.py",
        'elif step.strategy in ("mean", "XXmedianXX"):',
    ): "a numeric imputer's rows are floats (or objects holding them): converted first or not, the same bits",
    (
        "build/engines/pipeline.py",
        'elif step.strategy in ("mean", "MEDIAN"):',
    ): "a numeric imputer's rows are floats (or objects holding them): converted first or not, the same bits",
    (
        "build/engines/pipeline.py",
        "else ~np.array([is_missing(value) for value in statistics], dtype=None)",
    ): "numpy infers bool from the booleans is_missing returns; an imputer has at least one statistic",
    (
        "build/engines/pipeline.py",
        "else ~np.array([is_missing(value) for value in statistics], )",
    ): "numpy infers bool from the booleans is_missing returns; an imputer has at least one statistic",
    (
        "build/engines/pipeline.py",
        "fill = statistics[valid].astype(step._fill_dtype, copy=None)",
    ): "whether astype copies or not, fill is a new array from the mask, and nothing writes to it",
    (
        "build/engines/pipeline.py",
        "fill = statistics[valid].astype(step._fill_dtype, )",
    ): "whether astype copies or not, fill is a new array from the mask, and nothing writes to it",
    (
        "build/engines/pipeline.py",
        "fill = statistics[valid].astype(step._fill_dtype, copy=True)",
    ): "whether astype copies or not, fill is a new array from the mask, and nothing writes to it",
    (
        "build/engines/pipeline.py",
        "indicator = step.indicator_.features_ if step.add_indicator else np.array([], dtype=None)",
    ): "an empty indicator is stored as int64 on the next lines and read only when add_indicator is set",
    (
        "build/engines/pipeline.py",
        "indicator = step.indicator_.features_ if step.add_indicator else np.array([], )",
    ): "an empty indicator is stored as int64 on the next lines and read only when add_indicator is set",
    (
        "build/engines/pipeline.py",
        '"indicator": np.asarray(indicator, dtype=None),',
    ): "MissingIndicator's features_ are int64 indices, or the empty array (never read: no indicator)",
    (
        "build/engines/pipeline.py",
        '"indicator": np.asarray(indicator, ),',
    ): "MissingIndicator's features_ are int64 indices, or the empty array (never read: no indicator)",
    (
        "build/engines/pipeline.py",
        'arrays[branch.prefix + "columns"] = np.array(indices, dtype=None)',
    ): "numpy infers int64 from the Python ints; a branch without columns is skipped before",
    (
        "build/engines/pipeline.py",
        'arrays[branch.prefix + "columns"] = np.array(indices, )',
    ): "numpy infers int64 from the Python ints; a branch without columns is skipped before",
    (
        "build/engines/pipeline.py",
        "rows[:, column] = np.array(values, dtype=None)",
    ): "assigning into rows converts the values to rows' dtype anyway",
    (
        "build/engines/pipeline.py",
        "rows[:, column] = np.array(values, )",
    ): "assigning into rows converts the values to rows' dtype anyway",
    (
        "build/engines/pipeline.py",
        '_, probes = _transform_steps(estimator, "XXXX")',
    ): "only the probes are read: the arrays under the prefix are dropped",
    (
        "build/engines/pipeline.py",
        "values = reference[:, column].astype(None)",
    ): "astype(None) is float64",
    (
        "build/engines/pipeline.py",
        "spread = float(np.nanstd(values)) + 1.0 if not np.isnan(values).all() else 2.0",
    ): "that spread is used on a column all NaN, where NaN + noise is NaN whatever the spread",
    (
        "build/engines/pipeline.py",
        "random_rows[:, column] = random_rows[:, column].astype(np.float64) - noise",
    ): "the noise is normal, symmetric about 0: subtracting it draws from the same distribution",
    (
        "build/engines/pipeline.py",
        "random_rows[:, column] = random_rows[:, column].astype(None) + noise",
    ): "astype(None) is float64",
    (
        "build/engines/pipeline.py",
        "[known[i] for i in rng.integers(len(known), size=RANDOM_PROBES)], dtype=None",
    ): "stored into an object column: numpy's strings become str objects, floats stay floats",
    (
        "build/engines/pipeline.py",
        "[known[i] for i in rng.integers(len(known), size=RANDOM_PROBES)], )",
    ): "stored into an object column: numpy's strings become str objects, floats stay floats",
    (
        "build/engines/pipeline.py",
        "edges = np.array(sorted(probes.edges.get(column, set())), dtype=None)",
    ): "numpy infers float64 from the Python floats recorded, and an empty list is float64 too",
    (
        "build/engines/pipeline.py",
        "edges = np.array(sorted(probes.edges.get(column, set())), )",
    ): "numpy infers float64 from the Python floats recorded, and an empty list is float64 too",
    (
        "functions/predict/serving/engines/linear.py",
        'with np.errstate(over=None, invalid="ignore"):',
    ): "after the row maximum is subtracted every exponent is <= 0 or NaN: nothing here can overflow",
    (
        "functions/predict/serving/engines/linear.py",
        'with np.errstate(invalid="ignore"):',
    ): "after the row maximum is subtracted every exponent is <= 0 or NaN: nothing here can overflow",
    (
        "functions/predict/serving/engines/linear.py",
        "positive = expit(decision.reshape(-2))",
    ): "numpy takes any negative size as the unknown one: -2 is -1",
    (
        "functions/predict/serving/engines/linear.py",
        "decision -= np.max(decision, axis=1).reshape(-2, 1)",
    ): "numpy takes any negative size as the unknown one: -2 is -1",
    (
        "functions/predict/serving/engines/linear.py",
        "decision /= np.sum(decision, axis=1).reshape(-2, 1)",
    ): "numpy takes any negative size as the unknown one: -2 is -1",
    (
        "functions/predict/serving/engines/linear.py",
        'features = rows if rows.dtype.kind == "XXfXX" else np.asarray(rows, dtype=np.float64)',
    ): "float rows reach a linear engine as float64 (the API's, or a step's output): converting them changes nothing",
    (
        "functions/predict/serving/engines/linear.py",
        'features = rows if rows.dtype.kind == "F" else np.asarray(rows, dtype=np.float64)',
    ): "float rows reach a linear engine as float64 (the API's, or a step's output): converting them changes nothing",
    (
        "functions/predict/serving/engines/linear.py",
        "return self.classes.take(indices, axis=None)",
    ): "classes is 1-d: take along axis None or 0 picks the same labels",
    (
        "functions/predict/serving/engines/linear.py",
        "return self.classes.take(indices, )",
    ): "classes is 1-d: take along axis None or 0 picks the same labels",
    (
        "functions/predict/serving/engines/preprocessing.py",
        'if values.dtype.kind == "f" or self.numeric[column]:',
    ): "the float fast path and the general lookup find the same codes; floats never reach a word column",
    (
        "functions/predict/serving/engines/preprocessing.py",
        'if values.dtype.kind != "f" and self.numeric[column]:',
    ): "the float fast path and the general lookup find the same codes; floats never reach a word column",
    (
        "functions/predict/serving/engines/preprocessing.py",
        'if values.dtype.kind == "XXfXX" and self.numeric[column]:',
    ): "it only picks the float fast path or the general lookup, which find the same codes",
    (
        "functions/predict/serving/engines/preprocessing.py",
        'if values.dtype.kind == "F" and self.numeric[column]:',
    ): "it only picks the float fast path or the general lookup, which find the same codes",
    (
        "functions/predict/serving/engines/preprocessing.py",
        "return np.fromiter(looked_up, dtype=np.intp, )",
    ): "count only preallocates: the iterator gives values.shape[0] codes either way",
    (
        "functions/predict/serving/engines/preprocessing.py",
        "encoded = np.empty((rows.shape[0], int(self.offsets[-1])), dtype=None)",
    ): "np.empty's default dtype is float64",
    (
        "functions/predict/serving/engines/preprocessing.py",
        "encoded = np.empty((rows.shape[0], int(self.offsets[-1])), )",
    ): "np.empty's default dtype is float64",
    (
        "functions/predict/serving/engines/preprocessing.py",
        "branch.transform(rows[:, columns]) for branch, columns in zip(self.branches, self.columns, strict=None)",
    ): "the arrays store one column list per branch: the lengths are equal",
    (
        "functions/predict/serving/engines/preprocessing.py",
        "branch.transform(rows[:, columns]) for branch, columns in zip(self.branches, self.columns, )",
    ): "the arrays store one column list per branch: the lengths are equal",
    (
        "functions/predict/serving/engines/preprocessing.py",
        "branch.transform(rows[:, columns]) for branch, columns in zip(self.branches, self.columns, strict=False)",
    ): "the arrays store one column list per branch: the lengths are equal",
    (
        "build/engines/pipeline.py",
        '_transform_steps(estimator, "XXXX")',
    ): "only whether it raises is read: the arrays under the prefix are dropped",
    (
        "build/engines/pipeline.py",
        "reason = None",
    ): "_transform_steps and _final_compiler raise the same refusal themselves when compiling goes on",
    (
        "functions/predict/serving/engines/preprocessing.py",
        'if self.conversion == "XXfloatXX":',
    ): "float rows through the keep path (np.array, then the infinity check) are the same float64 rows",
    (
        "functions/predict/serving/engines/preprocessing.py",
        'if self.conversion == "FLOAT":',
    ): "float rows through the keep path (np.array, then the infinity check) are the same float64 rows",
    (
        "functions/predict/serving/engines/preprocessing.py",
        'if self.conversion != "object":',
    ): "every conversion finds NaN by x != x and fills the same values; only the array's type differs",
    (
        "functions/predict/serving/engines/preprocessing.py",
        'if self.conversion == "XXobjectXX":',
    ): "object rows through the keep path (np.array) stay the same object rows",
    (
        "functions/predict/serving/engines/preprocessing.py",
        'if self.conversion == "OBJECT":',
    ): "object rows through the keep path (np.array) stay the same object rows",
    (
        "functions/predict/serving/engines/preprocessing.py",
        "return np.array(rows, dtype=None)",
    ): "rows reaching an object imputer are object arrays already: np.array keeps them so",
    (
        "functions/predict/serving/engines/preprocessing.py",
        "return np.array(rows, )",
    ): "rows reaching an object imputer are object arrays already: np.array keeps them so",
    (
        "build/engines/base.py",
        'with archive.open(member, "w", ) as stream:',
    ): "without zip64 fields the members are laid out otherwise, read back the same; none nears 2 GiB",
    (
        "build/engines/base.py",
        "np.lib.format.write_array(stream, np.asanyarray(array), allow_pickle=None)",
    ): "write_array tests `if not allow_pickle`: None refuses object arrays as False does",
    (
        "functions/predict/serving/engines/scikit_learn.py",
        "proba = np.zeros((features.shape[0], self.n_classes), dtype=None)",
    ): "numpy's zeros are float64 by default",
    (
        "functions/predict/serving/engines/scikit_learn.py",
        "proba = np.zeros((features.shape[0], self.n_classes), )",
    ): "numpy's zeros are float64 by default",
    (
        "functions/predict/serving/engines/scikit_learn.py",
        "return self.classes.take(np.argmax(proba, axis=1), axis=None), proba",
    ): "classes_ is 1-d: taking from it flattened (axis None) is taking along axis 0",
    (
        "functions/predict/serving/engines/scikit_learn.py",
        "return self.classes.take(np.argmax(proba, axis=1), ), proba",
    ): "classes_ is 1-d: taking from it flattened (take's default) is taking along axis 0",
    (
        "functions/predict/serving/engines/preprocessing.py",
        "found = known.take(positions) == values if known.size else np.zeros(values.shape, dtype=None)",
    ): "np.where reads float zeros as False, as it reads bool ones: the same codes",
    (
        "functions/predict/serving/engines/preprocessing.py",
        "found = known.take(positions) == values if known.size else np.zeros(values.shape, )",
    ): "np.where reads float zeros as False, as it reads bool ones: the same codes",
    (
        "build/engines/pipeline.py",
        'if getattr(step, "sparse_output_", None):',
    ): "read only for its truth: a missing sparse_output_ is false as None as it is as False",
}


def runtime_mutant_name(relative_source_path: Path, mutant_method_name: str) -> str:
    """mutmut's name for a mutant, with the module named as the function imports it."""
    name = get_mutant_name(relative_source_path, mutant_method_name)
    for root in LAMBDA_ROOTS:
        name = name.removeprefix(root)
    return name


def module_statuses() -> dict[str, Counter[str]]:
    """The last run's mutant statuses, counted per mutated file."""
    Config.ensure_loaded()
    counts: dict[str, Counter[str]] = {}
    for path in mutmut_cli.walk_mutatable_files():
        data = SourceFileMutationData(path=path)
        data.load()
        if data.exit_code_by_key:
            counts[str(path)] = Counter(
                status_of(name, mutmut_cli.status_by_exit_code[code], path)
                for name, code in data.exit_code_by_key.items()
            )
    return counts


def status_of(mutant: str, status: str, path: Path) -> str:
    """mutmut's status, or "equivalent" for a survivor EQUIVALENT_MUTANTS lists."""
    return "equivalent" if status == "survived" and is_listed_equivalent(mutant, path) else status


def is_listed_equivalent(mutant: str, path: Path | None = None) -> bool:
    """Whether the mutant's one mutated line is in EQUIVALENT_MUTANTS for its file."""
    found = path if path is not None else mutmut_cli.find_mutant(mutant).path
    diff = mutmut_cli.get_diff_for_mutant(mutant, path=found)
    mutated = [line[1:].strip() for line in diff.splitlines() if line.startswith("+") and not line.startswith("+++")]
    return len(mutated) == 1 and (str(found), mutated[0]) in EQUIVALENT_MUTANTS


def score_table(counts: dict[str, Counter[str]]) -> tuple[list[str], bool]:
    """One line per module: mutants, each status, and the killed share of the scored mutants."""
    columns = ["killed", "survived", "equivalent", "timeout", "no tests", "suspicious", "segfault", "not checked"]
    lines = [f"{'module':<52} {'mutants':>7} " + " ".join(f"{column:>11}" for column in columns) + f" {'score':>6}"]
    all_met = True
    for module, statuses in sorted(counts.items()):
        scored = sum(count for status, count in statuses.items() if status not in UNSCORED)
        # A timeout is a kill: the mutant made the tests hang, which the team would notice.
        killed = statuses["killed"] + statuses["timeout"] + statuses["segfault"]
        score = f"{killed / scored:.1%}" if scored else "-"
        all_met = all_met and (not scored or killed / scored >= TARGET_SCORE)
        row = " ".join(f"{statuses[column]:>11}" for column in columns)
        lines.append(f"{module:<52} {statuses.total():>7} {row} {score:>6}")
    return lines, all_met


def report() -> int:
    lines, all_met = score_table(module_statuses())
    sys.stdout.write("\n".join(lines) + "\n")
    if not all_met:
        sys.stdout.write(f"below the {TARGET_SCORE:.0%} target: python tests/mutate.py results lists the survivors\n")
    return 0 if all_met else 1


def pytest_configure(config: object) -> None:
    """A pytest plugin hook: hypothesis shrinks a failing example to the smallest one, re-running
    the test many times, which a person reading the failure needs and a mutant's verdict does not
    (a mutant that breaks a fuzzed handler could shrink past its timeout). Examples are still
    generated as in `make test`; a failure stops at the first one found."""
    # Imported here, once pytest has marked its plugins (hypothesis is one) for assertion rewriting.
    from hypothesis import Phase, settings

    no_shrinking = [Phase.explicit, Phase.generate]
    # No example database either: one mutant's failing examples must not be replayed for the next.
    settings.register_profile("mutate", phases=no_shrinking, report_multiple_bugs=False, database=None)
    settings.load_profile("mutate")


# The mutated functions each fixture's setup called, while mutmut records which tests call what.
FIXTURE_CALLS: dict[FixtureDef[Any], set[str]] = {}
# Fixtures shared more widely than this are not counted as their users' calls (below).
SHARED_SCOPES = frozenset({"session"})


def recording_calls() -> bool:
    return os.environ.get("MUTANT_UNDER_TEST") == "stats"


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(fixturedef: FixtureDef[Any], request: SubRequest) -> Any:
    """A pytest plugin hook: mutmut credits a call to the test during which it happens, so what
    a module-scoped fixture computes once (a fitted model's probes, a compiled model) counts for
    the first test that uses it only, and a mutant there is never tried on the others, which
    may be the ones that check it. The calls made while a fixture is set up are recorded here
    and credited to every test that uses the fixture (pytest_runtest_teardown). Session-wide
    fixtures (the baked Iris package every API test uses) are left out: they would make each of
    hundreds of API tests a test of the build, and a surviving build mutant would run them all."""
    if not recording_calls() or fixturedef.scope in SHARED_SCOPES:
        return (yield)
    outer = mutmut._stats
    mutmut._stats = set()
    try:
        return (yield)
    finally:
        FIXTURE_CALLS.setdefault(fixturedef, set()).update(mutmut._stats)
        mutmut._stats = outer | mutmut._stats


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_teardown(item: Item, nextitem: Item | None) -> None:
    """Before mutmut reads a test's calls (its own pytest_runtest_teardown): add those of the
    fixtures it uses, whether they were set up for it or for an earlier test."""
    if not recording_calls():
        return
    for name in getattr(item, "fixturenames", ()):
        for fixturedef in item._fixtureinfo.name2fixturedefs.get(name, ()):  # type: ignore[attr-defined]
            mutmut._stats.update(FIXTURE_CALLS.get(fixturedef, ()))


def pytest_sessionstart(session: object) -> None:
    """A pytest plugin hook (pyproject.toml passes `-p tests.mutate` to mutmut's runs): mutmut runs
    pytest many times in one process and its forks, and the function's logger keeps the stdout of
    the session that imported it, closed when that session ended; each session gets its own.
    (Metrics left over are cleared before every test by tests/conftest.py.)"""
    observability = sys.modules.get("serving.observability")
    if observability is not None:
        observability.logger.registered_handler.stream = sys.stdout


def pytest_sessionfinish(session: object, exitstatus: int) -> None:
    """A pytest plugin hook: schemathesis serves ASGI apps from one event-loop thread per process,
    kept in its module globals (schemathesis.python.asgi, private, pinned in requirements-dev.txt).
    mutmut forks each mutant's process from the one that ran the clean tests: the child inherits
    the globals but not the thread, and its first schemathesis request waited for that thread
    until the mutant's timeout. Stopping the thread (and the app lifespans it serves) at the end
    of every session leaves none to inherit; a child's schemathesis test starts its own."""
    asgi = sys.modules.get("schemathesis.python.asgi")
    if asgi is not None:
        asgi._shutdown()


def run_mutant_tests_in_two_sessions(runner: PytestRunner, *, mutant_name: str | None, tests: Iterable[str]) -> int:
    """mutmut's PytestRunner.run_tests, with a mutant's tests (fastest first) split in two pytest
    sessions: the FIRST_SESSION_TESTS fastest, then the rest only if those all passed. A session
    collects every test file it is given before its first test runs, and a function of the
    request path is called by hundreds of tests in dozens of files; most mutants fail one of
    the first few, so they no longer pay for collecting the rest. The verdict is unchanged:
    killed if any test fails, survived if all pass.

    A mutant EQUIVALENT_MUTANTS explains is not run: it survives (the table counts it as
    equivalent) without every test of its function running to the end, which is what made
    equivalent mutants the longest part of a pass. Once its line changes it is run again."""
    if mutant_name is not None and is_listed_equivalent(mutant_name):
        return 0
    ordered = list(tests)
    if mutant_name is None or len(ordered) <= FIRST_SESSION_TESTS:
        return mutmut_run_tests(runner, mutant_name=mutant_name, tests=ordered)
    first = mutmut_run_tests(runner, mutant_name=mutant_name, tests=ordered[:FIRST_SESSION_TESTS])
    if first != 0:
        return first
    return mutmut_run_tests(runner, mutant_name=mutant_name, tests=ordered[FIRST_SESSION_TESTS:])


def run(mutant_globs: list[str], minutes: float) -> int:
    """mutmut run in a child process, interrupted (as Ctrl-C would) when the budget is spent."""
    command = [sys.executable, __file__, "run-unbounded", *mutant_globs]
    with subprocess.Popen(command) as mutmut_run:
        try:
            mutmut_run.wait(timeout=minutes * 60)
        except subprocess.TimeoutExpired:
            sys.stdout.write(f"\nstopping after {minutes:g} minutes; `make mutate` again goes on from here\n")
            mutmut_run.send_signal(signal.SIGINT)
            mutmut_run.wait()
    return report()


def main(arguments: list[str]) -> int:
    if arguments[:1] == ["run"]:
        return run(arguments[1:], float(os.environ.get("MUTATE_MINUTES", DEFAULT_MINUTES)))
    if arguments == ["score"]:
        return report()
    if arguments == ["equivalents"]:
        sys.stdout.writelines(f"{path}: {line}\n    {why}\n" for (path, line), why in EQUIVALENT_MUTANTS.items())
        return 0
    if arguments[:1] == ["run-unbounded"]:
        arguments = ["run", *arguments[1:]]
        # A process started in the background ignores SIGINT; the budget's interrupt must reach mutmut.
        signal.signal(signal.SIGINT, signal.default_int_handler)
    # mutmut's run looks the name function up in its own module: replaced there.
    setattr(mutmut_cli, "get_mutant_name", runtime_mutant_name)  # noqa: B010
    # mutmut 3.7 reads pytest's private `Item._nodeid`, which pytest 9 no longer has. mutmut 3.8.1
    # reads `nodeid` but requires click>=8.4.2, and aws-sam-cli pins click==8.1.8.
    if not hasattr(Item, "_nodeid"):
        setattr(Item, "_nodeid", property(lambda item: item.nodeid))  # noqa: B010
    setattr(PytestRunner, "run_tests", run_mutant_tests_in_two_sessions)  # noqa: B010
    mutmut_cli.cli(arguments, standalone_mode=False)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

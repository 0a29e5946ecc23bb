from __future__ import annotations

import functools
import hashlib
import importlib
import io
import json
import shutil
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from filelock import FileLock

from build import DEFAULT_SPEC
from build.spec import ModelSpec, load_spec
from local.lambda_runtime import LambdaContext
from serving.config import PACKAGE_MODEL_DIR
from serving.errors import ModelLoadError
from serving.manifest import COMPILED, MANIFEST_FILE, SCIKIT_LEARN, EngineName
from tests.shared import MADE, shared_once

# The training and AWS libraries (scikit-learn and the rest, moto, boto3: seconds of CPU) are imported by
# the fixtures and helpers that use them, not here: pytest-xdist's controller loads this conftest too
# (`pytest tests/unit`, as `make test-unit` runs it) but runs no test, and a worker imports them with
# the first test that needs them.


def trained(spec: ModelSpec) -> Path:
    """`spec`'s model as the build trains it (model.joblib and its manifest), trained once for all runs
    until an input changes (train_if_needed checks the fingerprint and the file's digest).

    Kept between runs in the build's cache folder (ignored by git, emptied by `make clean`), in a folder
    named by the spec's fingerprint: that covers the recipe, its data, the training code and the library
    versions, so a run reuses a model exactly when the build would."""
    from build.train import MODEL_CACHE_DIR, fingerprint, train_if_needed

    directory = MODEL_CACHE_DIR / ".tests" / f"{spec.name}-{fingerprint(spec)[:16]}"
    directory.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(directory.parent / f"{directory.name}.lock"):
        train_if_needed(directory, spec)
    return directory


def baked(spec: ModelSpec, engine: EngineName, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A package directory holding `spec`'s model baked with `engine` (which must serve it), once per
    test run."""
    from build.bake import bake_model
    from build.train import fingerprint

    training = trained(spec)
    package = shared_once(
        tmp_path_factory,
        f"{spec.name}-{fingerprint(spec)[:16]}-{engine}",
        lambda into: bake_model(into, engine, training, spec),
    )
    manifest = json.loads((package / PACKAGE_MODEL_DIR / MANIFEST_FILE).read_text())
    assert manifest["engine"]["name"] == engine, manifest["engine"]
    return package


@pytest.fixture(autouse=True)
def no_metrics_left_over() -> None:
    """The function's metrics are module state that only its handler flushes: a test that records
    one without the handler (or fails before the flush) would leave it in the next test's EMF
    document, and which test comes next depends on the order the run (or a worker of it) takes them in."""
    observability = sys.modules.get("serving.observability")
    if observability is not None:
        observability.metrics.clear_metrics()


@pytest.fixture(scope="session")
def training_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The product's model as the build step trains it: model.joblib and its manifest."""
    return trained(load_spec(DEFAULT_SPEC))


@pytest.fixture(scope="session")
def model_version(training_dir: Path) -> str:
    """The version the served model must report, computed here from the trained file: the first 12
    hex digits of its sha256 (as docs/api.md shows it), never read back from the app."""
    from build.train import MODEL_FILE

    return hashlib.sha256((training_dir / MODEL_FILE).read_bytes()).hexdigest()[:12]


@pytest.fixture(scope="session")
def baked_engine(iris_model_dir: Path) -> str:
    """The engine the build baked into the package, from the manifest file it wrote."""
    engine: str = json.loads((iris_model_dir / "manifest.json").read_text())["engine"]["name"]
    return engine


@pytest.fixture(scope="session")
def iris_estimator(training_dir: Path) -> Any:
    import joblib

    from build.train import MODEL_FILE

    return joblib.load(training_dir / MODEL_FILE)


@pytest.fixture(scope="session", params=[COMPILED, SCIKIT_LEARN])
def iris_model_dir(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The model directory the build bakes into the package, once per engine."""
    return baked(load_spec(DEFAULT_SPEC), request.param, tmp_path_factory) / PACKAGE_MODEL_DIR


# For a test whose outcome the serving engine cannot change (routing, configuration, tracing, what a cold
# start imports): the compiled engine only, the one the build bakes for Iris, instead of once per engine.
# Each engine's answers are checked where they can differ (predictions, /model, the gate). Apply it to a
# test that reaches `iris_model_dir` (directly or through `app_module`): it overrides that fixture's params.
one_engine = pytest.mark.parametrize("iris_model_dir", [COMPILED], indirect=True)


LogRecords = Callable[[], list[dict[str, object]]]


def tiny_spec(**params: Any) -> ModelSpec:
    """The default spec with a small seeded forest: fast to train, same files and manifest."""
    spec = load_spec(DEFAULT_SPEC)
    assert spec.training is not None
    training = spec.training.model_copy(update={"params": {"random_state": 7, "n_jobs": 1, **params}})
    return spec.model_copy(update={"training": training})


@pytest.fixture
def tiny_model_dir(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A three-tree seeded forest: fast to train, same files and manifest as the real one. Trained
    once per test run; each test gets a copy of its own, to change or break."""
    from build.train import train_if_needed

    def train(into: Path) -> None:
        train_if_needed(into, tiny_spec(n_estimators=3))

    shutil.copytree(shared_once(tmp_path_factory, "tiny-forest", train), tmp_path, dirs_exist_ok=True, ignore=MADE)
    return tmp_path


@contextmanager
def imported_app(model_dir: Path) -> Iterator[ModuleType]:
    """The Lambda entry point module serving the model in `model_dir`, freshly imported (as a cold start)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MODEL_DIR", str(model_dir))
        patch.delitem(sys.modules, "app", raising=False)
        yield importlib.import_module("app")


@pytest.fixture(scope="session")
def app_module(iris_model_dir: Path) -> Iterator[ModuleType]:
    """The Lambda entry point module, imported once per baked engine (as a cold start)."""
    with imported_app(iris_model_dir) as module:
        yield module


@pytest.fixture(scope="session")
def batch_module(app_module: ModuleType) -> Iterator[ModuleType]:
    """functions/predict/batch.py (the batch job's scoring handler) over `app_module`'s model."""
    with pytest.MonkeyPatch.context() as patch:
        patch.delitem(sys.modules, "batch", raising=False)
        yield importlib.import_module("batch")


ColdStartWithoutAModel = Callable[[str], list[dict[str, object]]]


@pytest.fixture
def cold_start_without_a_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, log_records: LogRecords
) -> ColdStartWithoutAModel:
    """Imports an entry point module (`app` or `batch`) with MODEL_DIR an empty folder, as a cold start
    whose model is missing: checks that the import refuses with the loader's error, and returns the
    log records it wrote."""

    def start(module: str) -> list[dict[str, object]]:
        monkeypatch.setenv("MODEL_DIR", str(tmp_path))
        monkeypatch.delitem(sys.modules, module, raising=False)
        with pytest.raises(ModelLoadError, match="manifest not found"):
            importlib.import_module(module)
        monkeypatch.delitem(sys.modules, module, raising=False)
        return log_records()

    return start


@pytest.fixture
def lambda_context() -> LambdaContext:
    return LambdaContext()


@pytest.fixture
def log_records() -> Iterator[LogRecords]:
    """Reads the JSON lines the function's Powertools logger writes from now on."""
    from serving.observability import logger

    handler = logger.registered_handler
    stream = io.StringIO()
    previous = handler.setStream(stream)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    handler.setStream(previous)


@pytest.fixture(autouse=True, scope="session")
def botocore_data_read_once() -> Iterator[None]:
    """Every botocore session of the run shares one loader of botocore's data files (service models,
    endpoints): moto gives each test a new default session, which would parse them again (about 0.15 s
    of CPU per test that creates a client). Within one session botocore already shares them between
    its clients, which only read them."""
    import botocore.loaders
    import botocore.session

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(botocore.session, "create_loader", functools.cache(botocore.loaders.create_loader))
        yield


FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


@pytest.fixture(scope="session")
def fake_account_s3_client() -> Any:
    """One S3 client for the run, with fake credentials so nothing can reach a real account: moto
    answers for it wherever a mock is active, and creating a client costs about 40 ms of CPU."""
    import boto3
    import moto  # noqa: F401 (first: importing it adds its hook to every botocore client created after)

    session = boto3.session.Session(**{name.lower(): value for name, value in FAKE_CREDENTIALS.items()})
    return session.client("s3", region_name="us-east-1")


@pytest.fixture
def s3_client(monkeypatch: pytest.MonkeyPatch, fake_account_s3_client: Any) -> Iterator[Any]:
    """An S3 client on moto's in-memory AWS, empty for each test; the code under test gets the same
    fake credentials from the environment."""
    from moto import mock_aws

    for name, value in {**FAKE_CREDENTIALS, "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        yield fake_account_s3_client

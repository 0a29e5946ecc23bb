"""make publish for a package built without its model (MODEL_SOURCE=s3), and the function it deploys (moto for S3)."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from build import package, unpackaged_model_dir
from build.publish import main, make_bundle
from local.lambda_runtime import LambdaContext
from serving.manifest import MANIFEST_FILE
from tests.events import http_api_event
from tests.unit.build.conftest import logging_unconfigured

BUCKET, KEY = "models", "iris-random-forest/model.zip"


@pytest.fixture
def built_for_s3(tmp_path: Path, offline_build: dict[str, list[str]]) -> Path:
    out = tmp_path / "PredictFunction"
    package.main(["--out", str(out), "--model-source", "s3"])
    return out


@pytest.fixture
def bucket(s3_client: Any) -> Any:
    s3_client.create_bucket(Bucket=BUCKET)
    s3_client.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    return s3_client


def deploy_parameters(output: str) -> dict[str, str]:
    """The parameters of the `sam deploy` publish prints."""
    (command,) = [line.partition("deploy it with: ")[2] for line in output.splitlines() if "deploy it with" in line]
    assert command.startswith("sam deploy --stack-name iris-predict --parameter-overrides ")
    return dict(pair.split("=", 1) for pair in command.partition("--parameter-overrides ")[2].split())


def test_publish_uploads_the_model_the_build_left_out(
    built_for_s3: Path, bucket: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    with logging_unconfigured():
        main(["--bucket", BUCKET, "--package", str(built_for_s3)])

    parameters = deploy_parameters(capsys.readouterr().out)
    uploaded = bucket.get_object(Bucket=BUCKET, Key=KEY, VersionId=parameters["ModelVersionId"])["Body"].read()
    assert uploaded == make_bundle(unpackaged_model_dir(built_for_s3))
    assert parameters["ModelBucket"] == BUCKET
    assert parameters["ModelKey"] == KEY


def test_the_function_built_without_its_model_answers_from_the_published_one(
    built_for_s3: Path,
    bucket: Any,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    lambda_context: LambdaContext,
) -> None:
    with logging_unconfigured():
        main(["--bucket", BUCKET, "--package", str(built_for_s3)])
    parameters = deploy_parameters(capsys.readouterr().out)
    for name, parameter in {
        "MODEL_S3_BUCKET": "ModelBucket",
        "MODEL_S3_KEY": "ModelKey",
        "MODEL_S3_VERSION_ID": "ModelVersionId",
        "MODEL_SHA256": "ModelSha256",
    }.items():
        monkeypatch.setenv(name, parameters[parameter])
    # Where the built package would hold its model: it holds none.
    monkeypatch.setenv("MODEL_DIR", str(built_for_s3 / "model"))
    monkeypatch.setattr("serving.model_source.DOWNLOAD_ROOT", tmp_path)
    monkeypatch.delitem(sys.modules, "app", raising=False)
    app: ModuleType = importlib.import_module("app")
    monkeypatch.delitem(sys.modules, "app")

    prediction = app.handler(http_api_event(), lambda_context)
    served = json.loads(app.handler(http_api_event(method="GET", path="/model", body=None), lambda_context)["body"])

    assert prediction["body"] == '{"prediction":1}'
    built = json.loads((unpackaged_model_dir(built_for_s3) / MANIFEST_FILE).read_text())
    assert served["sha256"] == built["sha256"]

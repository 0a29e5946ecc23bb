"""Models from a versioned S3 object, pinned by version id and sha256 (moto for S3 and IAM)."""

from __future__ import annotations

import hashlib
import importlib
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
from moto.core import set_initial_no_auth_action_count

from build.publish import PublishError, make_bundle, publish
from local.lambda_runtime import LambdaContext
from serving.config import ConfigurationError, S3ModelSource, load_settings
from serving.errors import ModelLoadError
from serving.model import load_model
from serving.model_source import fetch_model
from tests.events import http_api_event

BUCKET, KEY = "models", "iris-random-forest/model.zip"


@pytest.fixture
def s3(s3_client: Any) -> Any:
    s3_client.create_bucket(Bucket=BUCKET)
    s3_client.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    return s3_client


@pytest.fixture
def published(s3: Any, iris_model_dir: Path) -> S3ModelSource:
    return publish(s3, BUCKET, KEY, iris_model_dir)


def source(published: S3ModelSource, **changes: str) -> S3ModelSource:
    fields = {"bucket": BUCKET, "key": KEY, "version_id": published.version_id, "sha256": published.sha256}
    return S3ModelSource(**{**fields, **changes})


def test_pinned_version_loads_and_predicts(published: S3ModelSource, s3: Any, tmp_path: Path) -> None:
    model = load_model(fetch_model(source(published), s3, root=tmp_path))

    assert model.predict([[6.1, 2.8, 4.7, 1.2]]).labels == [1]


def test_the_pinned_version_is_loaded_not_the_latest(published: S3ModelSource, s3: Any, tmp_path: Path) -> None:
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=b"a newer upload")

    model_dir = fetch_model(source(published), s3, root=tmp_path)

    assert json.loads((model_dir / "manifest.json").read_text())["name"] == "iris-random-forest"


def test_wrong_checksum_refuses_to_start(published: S3ModelSource, s3: Any, tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match=f"has sha256 {published.sha256}, MODEL_SHA256 expects 0+$"):
        fetch_model(source(published, sha256="0" * 64), s3, root=tmp_path)
    assert not list(tmp_path.iterdir())


def test_missing_version(published: S3ModelSource, s3: Any, tmp_path: Path) -> None:
    with pytest.raises(
        ModelLoadError, match=r"cannot read model bundle s3://models/.*versionId=3HL4kqtJlcpXroDTDmJ\+rmSpXd3dIbrHY: "
    ):
        fetch_model(source(published, version_id="3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY"), s3, root=tmp_path)


def test_missing_object(published: S3ModelSource, s3: Any, tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match=r"cannot read model bundle s3://models/nothing/here\.zip.*: NoSuch"):
        fetch_model(source(published, key="nothing/here.zip"), s3, root=tmp_path)


@set_initial_no_auth_action_count(2)
def test_access_denied(published: S3ModelSource, tmp_path: Path) -> None:
    iam = boto3.client("iam", region_name="us-east-1")
    iam.create_user(UserName="no-model-access")
    keys = iam.create_access_key(UserName="no-model-access")["AccessKey"]
    stranger = boto3.client(
        "s3",
        region_name="us-east-1",
        aws_access_key_id=keys["AccessKeyId"],
        aws_secret_access_key=keys["SecretAccessKey"],
    )

    with pytest.raises(ModelLoadError, match=r"cannot read model bundle .*: AccessDenied"):
        fetch_model(source(published), stranger, root=tmp_path)


def test_a_bundle_that_is_not_a_zip_is_refused(s3: Any, tmp_path: Path) -> None:
    body = b"not a zip"
    version = s3.put_object(Bucket=BUCKET, Key=KEY, Body=body)["VersionId"]
    pinned = S3ModelSource(BUCKET, KEY, version, hashlib.sha256(body).hexdigest())

    with pytest.raises(ModelLoadError, match="is not a valid bundle"):
        fetch_model(pinned, s3, root=tmp_path)


def test_publish_requires_a_versioned_bucket(s3: Any, iris_model_dir: Path) -> None:
    s3.create_bucket(Bucket="plain")

    with pytest.raises(PublishError, match="bucket plain has versioning never enabled; enable it"):
        publish(s3, "plain", KEY, iris_model_dir)


def test_bundles_are_reproducible(iris_model_dir: Path, published: S3ModelSource) -> None:
    assert hashlib.sha256(make_bundle(iris_model_dir)).hexdigest() == published.sha256
    assert published.parameter_overrides().startswith(f"ModelBucket={BUCKET} ModelKey={KEY} ModelVersionId=")


def test_settings_require_the_whole_pin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODEL_S3_BUCKET", BUCKET)
    monkeypatch.setenv("MODEL_S3_KEY", KEY)

    with pytest.raises(ConfigurationError, match="so MODEL_S3_VERSION_ID, MODEL_SHA256 must be set too"):
        load_settings()


def test_function_starts_from_the_s3_model(
    published: S3ModelSource, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, lambda_context: LambdaContext
) -> None:
    for name, value in {
        "MODEL_S3_BUCKET": BUCKET,
        "MODEL_S3_KEY": KEY,
        "MODEL_S3_VERSION_ID": published.version_id,
        "MODEL_SHA256": published.sha256,
        "MODEL_DIR": str(tmp_path / "no-baked-model-here"),
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr("serving.model_source.DOWNLOAD_ROOT", tmp_path)
    monkeypatch.delitem(sys.modules, "app", raising=False)
    app: ModuleType = importlib.import_module("app")
    monkeypatch.delitem(sys.modules, "app")

    response = app.handler(http_api_event(), lambda_context)

    assert response["body"] == '{"prediction":1}'

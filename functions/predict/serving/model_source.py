"""Fetching a model bundle from a versioned S3 object, pinned by version id and sha256.

The bundle (made by `python -m build.publish`) is a zip of manifest.json and the engine
file it names. Its sha256 is checked before anything in it is read; then load_model checks
the engine file against the manifest as for a baked model. boto3 is imported only here,
and only when a bucket is configured: the Lambda runtime provides it.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from serving.config import S3_PIN, S3ModelSource
from serving.errors import BundleChecksumError, BundleDownloadError, InvalidBundleError
from serving.manifest import MANIFEST_FILE, Manifest
from serving.observability import logger

DOWNLOAD_ROOT = Path("/tmp")
SHA256_SETTING = next(variable for field, variable, _ in S3_PIN if field == "sha256")


def _download(source: S3ModelSource, client: Any) -> bytes:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        response = client.get_object(Bucket=source.bucket, Key=source.key, VersionId=source.version_id)
        payload: bytes = response["Body"].read()
    except ClientError as error:
        details = error.response.get("Error", {})
        raise BundleDownloadError(source.uri, f"{details.get('Code')}: {details.get('Message')}") from error
    except BotoCoreError as error:
        raise BundleDownloadError(source.uri, str(error)) from error
    return payload


def _unpack(payload: bytes, source: S3ModelSource, target: Path) -> None:
    try:
        with zipfile.ZipFile(io.BytesIO(payload)) as bundle:
            engine_file = Manifest.model_validate_json(bundle.read(MANIFEST_FILE)).serving_engine.file
            if Path(engine_file).name != engine_file:
                raise InvalidBundleError(
                    source.uri, f"its manifest names {engine_file!r} as its engine file, not a file name"
                )
            target.mkdir(parents=True, exist_ok=True)
            for name in (MANIFEST_FILE, engine_file):
                (target / name).write_bytes(bundle.read(name))
    except (zipfile.BadZipFile, KeyError, ValidationError) as error:
        raise InvalidBundleError(source.uri, str(error)) from error


def fetch_model(source: S3ModelSource, client: Any = None, root: Path = DOWNLOAD_ROOT) -> Path:
    """Download, verify and unpack the pinned bundle; return the directory to load the model from."""
    if client is None:
        import boto3

        client = boto3.client("s3")
    payload = _download(source, client)
    digest = hashlib.sha256(payload).hexdigest()
    if digest != source.sha256:
        raise BundleChecksumError(source.uri, digest, source.sha256, SHA256_SETTING)
    target = root / f"model-{digest[:16]}"
    _unpack(payload, source, target)
    logger.info("model bundle fetched", extra={"model_uri": source.uri, "bundle_bytes": len(payload)})
    return target

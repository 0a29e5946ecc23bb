"""A model bundle in a versioned S3 object, read and verified, and the manifest it holds.

The bundle (made by `python -m build.publish`) is a zip of manifest.json and the engine file it
names, pinned by version id and sha256. The prediction function loads its model from it
(serving/model_source.py); the scheduled drift function reads the manifest of that same model
from it, so the profile that drift is measured against is the served model's. Apart from
model_source.py so that the drift function, which has neither Powertools nor the engines,
shares it: nothing here logs.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from typing import Any

from pydantic import ValidationError

from serving.config import S3_PIN, S3ModelSource
from serving.errors import MAX_LOGGED_CHARS, MAX_PROBLEM_CHARS, ModelLoadError, shorten
from serving.manifest import MANIFEST_FILE, Manifest

SHA256_SETTING = next(variable for field, variable, _ in S3_PIN if field == "sha256")


def _download_error(source: S3ModelSource, reason: str) -> ModelLoadError:
    """The pinned bundle cannot be read from S3; `reason` is S3's."""
    return ModelLoadError(f"cannot read model bundle {source.uri}: {shorten(reason, MAX_PROBLEM_CHARS)}")


def invalid_bundle(source: S3ModelSource, reason: str) -> ModelLoadError:
    """The bundle is not a zip of a valid manifest and the engine file it names."""
    return ModelLoadError(f"model bundle {source.uri} is not a valid bundle: {shorten(reason, MAX_LOGGED_CHARS)}")


def download(source: S3ModelSource, client: Any) -> bytes:
    """The pinned bundle's bytes, once their sha256 is the pinned one; ModelLoadError saying why not."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        response = client.get_object(Bucket=source.bucket, Key=source.key, VersionId=source.version_id)
        payload: bytes = response["Body"].read()
    except ClientError as error:
        details = error.response.get("Error", {})
        raise _download_error(source, f"{details.get('Code')}: {details.get('Message')}") from error
    except BotoCoreError as error:
        raise _download_error(source, str(error)) from error
    digest = hashlib.sha256(payload).hexdigest()
    if digest != source.sha256:
        raise ModelLoadError(f"model bundle {source.uri} has sha256 {digest}, {SHA256_SETTING} expects {source.sha256}")
    return payload


def bundle_manifest(payload: bytes, source: S3ModelSource) -> Manifest:
    """The manifest in a downloaded bundle; ModelLoadError when the bundle has no valid one."""
    try:
        with zipfile.ZipFile(io.BytesIO(payload)) as bundle:
            return Manifest.model_validate_json(bundle.read(MANIFEST_FILE))
    except (zipfile.BadZipFile, KeyError, ValidationError) as error:
        raise invalid_bundle(source, str(error)) from error

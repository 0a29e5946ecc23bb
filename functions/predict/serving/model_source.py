"""Fetching a model bundle from a versioned S3 object, pinned by version id and sha256.

The bundle (made by `python -m build.publish`) is a zip of manifest.json and the engine
file it names. Its sha256 is checked before anything in it is read; then load_model checks
the engine file against the manifest as for a baked model. The bundle is held in memory, not
written to /tmp: a function with SnapStart has 512 MB of /tmp at most, and the unpacked model
needs it (the memory is free again before load_model runs). boto3 is imported only here,
and only when a bucket is configured: the Lambda runtime provides it.
"""

from __future__ import annotations

import hashlib
import io
import shutil
import zipfile
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from serving.config import S3_PIN, S3ModelSource
from serving.errors import MAX_LOGGED_CHARS, MAX_PROBLEM_CHARS, ModelLoadError, shorten
from serving.manifest import MANIFEST_FILE, Manifest
from serving.observability import logger

DOWNLOAD_ROOT = Path("/tmp")
# The engine file is unpacked to /tmp in pieces of this size, not read whole: memory then holds the
# bundle once, and /tmp the model once (SnapStart allows no more than 512 MB of /tmp).
UNPACK_CHUNK_BYTES = 8 * 1024 * 1024
SHA256_SETTING = next(variable for field, variable, _ in S3_PIN if field == "sha256")


def _download_error(source: S3ModelSource, reason: str) -> ModelLoadError:
    """The pinned bundle cannot be read from S3; `reason` is S3's."""
    return ModelLoadError(f"cannot read model bundle {source.uri}: {shorten(reason, MAX_PROBLEM_CHARS)}")


def _invalid_bundle(source: S3ModelSource, reason: str) -> ModelLoadError:
    """The bundle is not a zip of a valid manifest and the engine file it names."""
    return ModelLoadError(f"model bundle {source.uri} is not a valid bundle: {shorten(reason, MAX_LOGGED_CHARS)}")


def _download(source: S3ModelSource, client: Any) -> bytes:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        response = client.get_object(Bucket=source.bucket, Key=source.key, VersionId=source.version_id)
        payload: bytes = response["Body"].read()
    except ClientError as error:
        details = error.response.get("Error", {})
        raise _download_error(source, f"{details.get('Code')}: {details.get('Message')}") from error
    except BotoCoreError as error:
        raise _download_error(source, str(error)) from error
    return payload


def _unpack(payload: bytes, source: S3ModelSource, target: Path) -> None:
    try:
        with zipfile.ZipFile(io.BytesIO(payload)) as bundle:
            engine_file = Manifest.model_validate_json(bundle.read(MANIFEST_FILE)).serving_engine.file
            if Path(engine_file).name != engine_file:
                raise _invalid_bundle(source, f"its manifest names {engine_file!r} as its engine file, not a file name")
            target.mkdir(parents=True, exist_ok=True)
            for name in (MANIFEST_FILE, engine_file):
                with bundle.open(name) as packed, (target / name).open("wb") as unpacked:
                    shutil.copyfileobj(packed, unpacked, UNPACK_CHUNK_BYTES)
    except (zipfile.BadZipFile, KeyError, ValidationError) as error:
        raise _invalid_bundle(source, str(error)) from error
    except OSError as error:
        # Most likely /tmp is full: the unpacked model needs room there (EphemeralStorage).
        raise ModelLoadError(f"cannot unpack model bundle {source.uri} into {target}: {shorten(str(error))}") from error


def fetch_model(source: S3ModelSource, client: Any = None, root: Path = DOWNLOAD_ROOT) -> Path:
    """Download, verify and unpack the pinned bundle; return the directory to load the model from."""
    if client is None:
        import boto3

        client = boto3.client("s3")
    payload = _download(source, client)
    digest = hashlib.sha256(payload).hexdigest()
    if digest != source.sha256:
        raise ModelLoadError(f"model bundle {source.uri} has sha256 {digest}, {SHA256_SETTING} expects {source.sha256}")
    target = root / f"model-{digest[:16]}"
    _unpack(payload, source, target)
    logger.info("model bundle fetched", extra={"model_uri": source.uri, "bundle_bytes": len(payload)})
    return target

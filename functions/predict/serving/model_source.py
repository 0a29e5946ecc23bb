"""Fetching a model bundle from a versioned S3 object, pinned by version id and sha256.

The bundle (made by `python -m build.publish`, read and verified by serving/bundle.py) is a zip
of manifest.json and the engine file it names. Its sha256 is checked before anything in it is
read; then load_model checks the engine file against the manifest as for a baked model. boto3
is imported only here, and only when a bucket is configured: the Lambda runtime provides it.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path
from typing import Any

from serving.bundle import bundle_manifest, download, invalid_bundle
from serving.config import S3ModelSource
from serving.manifest import MANIFEST_FILE
from serving.observability import logger

DOWNLOAD_ROOT = Path("/tmp")


def _unpack(payload: bytes, source: S3ModelSource, target: Path) -> None:
    engine_file = bundle_manifest(payload, source).serving_engine.file
    if Path(engine_file).name != engine_file:
        raise invalid_bundle(source, f"its manifest names {engine_file!r} as its engine file, not a file name")
    try:
        with zipfile.ZipFile(io.BytesIO(payload)) as bundle:
            target.mkdir(parents=True, exist_ok=True)
            for name in (MANIFEST_FILE, engine_file):
                (target / name).write_bytes(bundle.read(name))
    except (zipfile.BadZipFile, KeyError) as error:
        raise invalid_bundle(source, str(error)) from error


def fetch_model(source: S3ModelSource, client: Any = None, root: Path = DOWNLOAD_ROOT) -> Path:
    """Download, verify and unpack the pinned bundle; return the directory to load the model from."""
    if client is None:
        import boto3

        client = boto3.client("s3")
    payload = download(source, client)
    target = root / f"model-{hashlib.sha256(payload).hexdigest()[:16]}"
    _unpack(payload, source, target)
    logger.info("model bundle fetched", extra={"model_uri": source.uri, "bundle_bytes": len(payload)})
    return target

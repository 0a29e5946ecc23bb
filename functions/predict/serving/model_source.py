"""Fetching a model bundle from a versioned S3 object, pinned by version id and sha256.

The bundle (made by `python -m build.publish`, read and verified by serving/bundle.py) is a zip
of manifest.json and the engine file it names. Its sha256 is checked before anything in it is
read; then load_model checks the engine file against the manifest as for a baked model. The
bundle is held in memory, not written to /tmp: a function with SnapStart has 512 MB of /tmp at
most, and the unpacked model needs it (the memory is free again before load_model runs). boto3
is imported only here, and only when a bucket is configured: the Lambda runtime provides it.
"""

from __future__ import annotations

import hashlib
import io
import shutil
import zipfile
from pathlib import Path
from typing import Any

from serving.bundle import bundle_manifest, download, invalid_bundle
from serving.config import S3ModelSource
from serving.errors import ModelLoadError, shorten
from serving.manifest import MANIFEST_FILE
from serving.observability import logger

DOWNLOAD_ROOT = Path("/tmp")
# The engine file is unpacked to /tmp in pieces of this size, not read whole: memory then holds the
# bundle once, and /tmp the model once (SnapStart allows no more than 512 MB of /tmp).
UNPACK_CHUNK_BYTES = 8 * 1024 * 1024


def _unpack(payload: bytes, source: S3ModelSource, target: Path) -> None:
    engine_file = bundle_manifest(payload, source).serving_engine.file
    if Path(engine_file).name != engine_file:
        raise invalid_bundle(source, f"its manifest names {engine_file!r} as its engine file, not a file name")
    try:
        with zipfile.ZipFile(io.BytesIO(payload)) as bundle:
            target.mkdir(parents=True, exist_ok=True)
            for name in (MANIFEST_FILE, engine_file):
                with bundle.open(name) as packed, (target / name).open("wb") as unpacked:
                    shutil.copyfileobj(packed, unpacked, UNPACK_CHUNK_BYTES)
    except (zipfile.BadZipFile, KeyError) as error:
        raise invalid_bundle(source, str(error)) from error
    except OSError as error:
        # Most likely /tmp is full: the unpacked model needs room there (EphemeralStorage).
        raise ModelLoadError(f"cannot unpack model bundle {source.uri} into {target}: {shorten(str(error))}") from error


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

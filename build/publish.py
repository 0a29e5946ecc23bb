"""Publish the built model to a versioned S3 bucket, for functions that load it from there.

    python -m build.publish --bucket my-models [--key iris-random-forest/model.zip]

It bundles manifest.json and the engine file it names (its serving engine) from the built model
(reproducibly: the same model gives the same bytes), uploads the bundle, and prints the
`sam deploy --parameter-overrides` that pin exactly that object version and its sha256.
The built model is the one a build with MODEL_SOURCE=s3 left beside the package (`make publish`
builds so), else the one in the package. The bucket must have versioning enabled.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import logging
import sys
import zipfile
from pathlib import Path
from typing import Any

from build import unpackaged_model_dir
from build.inputs import stack_name
from local.lambda_local import DEFAULT_PACKAGE
from serving.config import PACKAGE_MODEL_DIR, S3ModelSource
from serving.manifest import MANIFEST_FILE, Manifest

log = logging.getLogger(__name__)

DEFAULT_KEY = "iris-random-forest/model.zip"


class PublishError(Exception):
    """The model cannot be published as asked; the message says why."""


def make_bundle(model_dir: Path) -> bytes:
    """A zip of the manifest and the engine file it names, with fixed timestamps."""
    manifest_path = model_dir / MANIFEST_FILE
    if not manifest_path.is_file():
        raise PublishError(f"no model manifest at {manifest_path}: run `sam build` first")
    engine_file = Manifest.model_validate_json(manifest_path.read_bytes()).serving_engine.file
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        for name in (MANIFEST_FILE, engine_file):
            bundle.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), (model_dir / name).read_bytes())
    return buffer.getvalue()


def built_model_dir(package: Path) -> Path:
    """The model a build left beside the package (MODEL_SOURCE=s3), else the one in it."""
    beside = unpackaged_model_dir(package)
    return beside if beside.is_dir() else package / PACKAGE_MODEL_DIR


def publish(client: Any, bucket: str, key: str, model_dir: Path) -> S3ModelSource:
    status = client.get_bucket_versioning(Bucket=bucket).get("Status")
    if status != "Enabled":
        raise PublishError(
            f"bucket {bucket} has versioning {status or 'never enabled'}; enable it so that each "
            "function can pin the exact model version it loads"
        )
    bundle = make_bundle(model_dir)
    digest = hashlib.sha256(bundle).hexdigest()
    response = client.put_object(Bucket=bucket, Key=key, Body=bundle, ContentType="application/zip")
    published = S3ModelSource(bucket=bucket, key=key, version_id=response["VersionId"], sha256=digest)
    log.info(
        "published %s (%d bytes) as s3://%s/%s version %s", model_dir, len(bundle), bucket, key, published.version_id
    )
    return published


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--key", default=DEFAULT_KEY)
    parser.add_argument("--package", type=Path, default=DEFAULT_PACKAGE, help="the built package")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[publish] %(message)s", stream=sys.stdout)
    import boto3

    try:
        published = publish(boto3.client("s3"), args.bucket, args.key, built_model_dir(args.package))
    except PublishError as error:
        log.error("publish failed: %s", error)
        raise SystemExit(1) from error
    log.info(
        "deploy it with: sam deploy --stack-name %s --parameter-overrides %s",
        stack_name(args.package),
        published.parameter_overrides(),
    )


if __name__ == "__main__":
    main()

"""Measure a Lambda package: unzipped and zipped size, and what takes the space."""

from __future__ import annotations

import tempfile
import zipfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

MB = 1_000_000
# Lambda's quota: 250 MB unzipped for the function and all its layers (262,144,000 bytes).
UNZIPPED_LIMIT_BYTES = 262_144_000
ZIPPED_DIRECT_UPLOAD_LIMIT_BYTES = 52_428_800
LARGEST_SHOWN = 10
# What to do when the model makes the package too large: the S3 model source (docs/api.md "A model from S3").
MODEL_FROM_S3 = (
    "leave the model out of the package and load it from S3: `make publish BUCKET=<versioned bucket>` "
    "(builds with MODEL_SOURCE=s3 and uploads the model), then the `sam deploy ... --parameter-overrides "
    'ModelBucket=...` it prints (docs/api.md "A model from S3")'
)


class PackageTooLargeError(Exception):
    """The package would exceed Lambda's unzipped size limit."""


@dataclass(frozen=True)
class SizeReport:
    unzipped_bytes: int
    zipped_bytes: int
    files: int
    by_top_level: list[tuple[str, int]]

    def render(self) -> str:
        lines = [
            f"package size: {self.unzipped_bytes / MB:.1f} MB unzipped "
            f"(limit {UNZIPPED_LIMIT_BYTES / MB:.1f} MB), {self.zipped_bytes / MB:.1f} MB zipped, "
            f"{self.files} files",
            "largest entries (MB unzipped):",
        ]
        lines += [f"  {size / MB:7.1f}  {name}" for name, size in self.by_top_level[:LARGEST_SHOWN]]
        if self.zipped_bytes > ZIPPED_DIRECT_UPLOAD_LIMIT_BYTES:
            lines.append("note: over 50 MB zipped, so it is uploaded through S3 (sam deploy does this)")
        return "\n".join(lines)

    def check_limit(self, model_in_package: bool = True) -> None:
        """Refuse a package over the limit; while it holds the model, say how to load the model from S3."""
        if self.unzipped_bytes > UNZIPPED_LIMIT_BYTES:
            raise PackageTooLargeError(
                f"package is {self.unzipped_bytes / MB:.1f} MB unzipped, over Lambda's "
                f"{UNZIPPED_LIMIT_BYTES / MB:.1f} MB limit; largest: "
                + ", ".join(f"{name} {size / MB:.1f} MB" for name, size in self.by_top_level[:5])
                + (f"; {MODEL_FROM_S3}" if model_in_package else " (the model is already left out)")
            )


def measure(package: Path) -> SizeReport:
    files = [path for path in sorted(package.rglob("*")) if path.is_file() and not path.is_symlink()]
    by_top_level: Counter[str] = Counter()
    for path in files:
        by_top_level[path.relative_to(package).parts[0]] += path.stat().st_size
    with tempfile.TemporaryDirectory() as scratch:
        archive = Path(scratch) / "package.zip"
        with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zipped:
            for path in files:
                zipped.write(path, path.relative_to(package))
        zipped_bytes = archive.stat().st_size
    return SizeReport(
        unzipped_bytes=sum(by_top_level.values()),
        zipped_bytes=zipped_bytes,
        files=len(files),
        by_top_level=by_top_level.most_common(),
    )

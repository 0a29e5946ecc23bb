"""The size guard (build/sizes.py) at Lambda's quota, to the byte."""

from __future__ import annotations

from pathlib import Path

import pytest

from build import sizes
from build.sizes import PackageTooLargeError, SizeReport

# Lambda's quota: 250 MB unzipped for a function and its layers, in MiB (AWS documentation).
LAMBDA_UNZIPPED_QUOTA = 250 * 1024 * 1024


def test_the_size_limit_is_lambdas_quota_to_the_byte() -> None:
    size_report(LAMBDA_UNZIPPED_QUOTA).check_limit()

    with pytest.raises(PackageTooLargeError, match=r"262\.1 MB unzipped, over Lambda's 262\.1 MB limit"):
        size_report(LAMBDA_UNZIPPED_QUOTA + 1).check_limit()


def size_report(unzipped_bytes: int) -> SizeReport:
    return SizeReport(unzipped_bytes=unzipped_bytes, zipped_bytes=1, files=1, by_top_level=[("numpy", unzipped_bytes)])


def make_tree(root: Path, files: dict[str, int]) -> Path:
    for name, size in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * size)
    return root


def test_size_report_counts_and_ranks_top_level_entries(tmp_path: Path) -> None:
    tree = make_tree(tmp_path, {"big/a.so": 3_000_000, "big/b.py": 1_000_000, "small/c.py": 500, "app.py": 100})

    report = sizes.measure(tree)

    assert report.unzipped_bytes == 4_000_600
    assert report.files == 4
    assert report.by_top_level == [("big", 4_000_000), ("small", 500), ("app.py", 100)]
    assert 0 < report.zipped_bytes < 100_000
    assert "package size: 4.0 MB unzipped" in report.render()
    report.check_limit()


def test_size_guard_fails_over_the_lambda_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    report = sizes.measure(make_tree(tmp_path, {"scipy/huge.so": 2_000_000}))
    monkeypatch.setattr(sizes, "UNZIPPED_LIMIT_BYTES", 1_000_000)

    with pytest.raises(
        sizes.PackageTooLargeError, match=r"2\.0 MB unzipped, over Lambda's 1\.0 MB limit; .*scipy 2\.0"
    ):
        report.check_limit()


def test_over_the_limit_with_the_model_points_to_s3_and_without_it_does_not() -> None:
    with pytest.raises(PackageTooLargeError, match=r"numpy .* MB; leave the model out .*`make publish BUCKET="):
        size_report(LAMBDA_UNZIPPED_QUOTA + 1).check_limit()
    with pytest.raises(PackageTooLargeError, match=r"numpy .* MB \(the model is already left out\)$"):
        size_report(LAMBDA_UNZIPPED_QUOTA + 1).check_limit(model_in_package=False)

"""`make drift` (local/drift.py and its report): exit status, JSON summary, and the HTML page as a
real browser draws it."""

from __future__ import annotations

import gzip
import io
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_iris

from local import drift
from serving.capture import Capture
from serving.manifest import Manifest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def write_capture(folder: Path, manifest: Manifest, rows: int, shift: float, seed: int = 0) -> None:
    """Captured requests as Firehose writes them (gzip'd JSON lines) under an hour folder."""
    generator = np.random.default_rng(seed)
    data = load_iris().data[generator.integers(0, 150, rows)].copy()
    data[:, 2] += shift
    stream = io.StringIO()
    capture = Capture(manifest, 100, stream)
    for row in data:
        capture.write(row[None, :], [int(generator.integers(0, 3))], None)
    (folder / "2026" / "12").mkdir(parents=True)
    (folder / "2026" / "12" / "capture-1.gz").write_bytes(gzip.compress(stream.getvalue().encode()))


@pytest.fixture
def manifest_path(training_dir: Path) -> Path:
    return training_dir / "manifest.json"


def run(capture: Path, manifest_path: Path, out: Path) -> int:
    return drift.main([str(capture), "--manifest", str(manifest_path), "--hours", "1", "--out", str(out)])


def test_a_shifted_feature_fails_the_run_and_leads_the_report(tmp_path: Path, manifest_path: Path) -> None:
    manifest = Manifest.model_validate_json(manifest_path.read_bytes())
    write_capture(tmp_path / "capture", manifest, rows=1000, shift=2.0)

    assert run(tmp_path / "capture", manifest_path, tmp_path / "out") == drift.DRIFTED

    summary = json.loads((tmp_path / "out" / drift.SUMMARY_FILE).read_text())
    assert summary["rows"] == 1000
    assert summary["features"][0]["name"] == "petal_length"
    assert summary["features"][0]["drifted"] == ["psi"]
    page = (tmp_path / "out" / drift.REPORT_FILE).read_text()
    assert page.count("<svg") == len(manifest.features) + 1
    assert page.index("petal_length") < page.index("sepal_length")


def test_traffic_like_the_training_rows_passes(tmp_path: Path, manifest_path: Path) -> None:
    manifest = Manifest.model_validate_json(manifest_path.read_bytes())
    write_capture(tmp_path / "capture", manifest, rows=1000, shift=0.0)
    assert run(tmp_path / "capture", manifest_path, tmp_path / "out") == 0
    summary = json.loads((tmp_path / "out" / drift.SUMMARY_FILE).read_text())
    assert not any(feature["drifted"] for feature in summary["features"])


def test_a_missing_manifest_or_folder_is_one_line(
    tmp_path: Path, manifest_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    assert run(tmp_path / "capture", tmp_path / "none.json", tmp_path / "out") == drift.FAILED
    assert run(tmp_path / "no-such-folder", manifest_path, tmp_path / "out") == drift.FAILED
    messages = [record.getMessage() for record in caplog.records]
    assert any("none.json not found: run `make build`" in message for message in messages)
    assert any("is not a folder of captured objects" in message for message in messages)


@pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium on PATH: apt-get install chromium to check the page in a browser"
)
@pytest.mark.slow
def test_the_report_draws_a_plot_per_feature_in_a_real_browser(tmp_path: Path, manifest_path: Path) -> None:
    manifest = Manifest.model_validate_json(manifest_path.read_bytes())
    write_capture(tmp_path / "capture", manifest, rows=1000, shift=2.0)
    run(tmp_path / "capture", manifest_path, tmp_path / "out")
    screenshot = tmp_path / "report.png"
    assert CHROMIUM is not None
    subprocess.run(
        [
            CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
            f"--screenshot={screenshot}", "--window-size=1200,900",
            (tmp_path / "out" / drift.REPORT_FILE).as_uri(),
        ],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    pixels = png_pixels(screenshot.read_bytes())
    # The bars: the current (blue) and reference (grey-blue) colours, each in many pixels, and the
    # drifted card's red border.
    for colour in ((0x25, 0x63, 0xEB), (0x8C, 0x9F, 0xB5), (0xDC, 0x26, 0x26)):
        assert np.all(pixels == colour, axis=-1).sum() > 200, colour
    assert screenshot.stat().st_size > 10_000


def png_pixels(data: bytes) -> np.ndarray:
    """An RGB(A) 8-bit PNG as an array (what chromium writes), with the standard library's zlib."""
    import struct
    import zlib

    position, chunks, header = 8, [], b""
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind = data[position + 4 : position + 8]
        body = data[position + 8 : position + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            chunks.append(body)
        position += 12 + length
    width, height, depth, colour_type = struct.unpack(">IIBB", header[:10])
    assert depth == 8
    assert colour_type in (2, 6)
    channels = 4 if colour_type == 6 else 3
    raw = zlib.decompress(b"".join(chunks))
    stride = width * channels
    image = np.zeros((height, stride), dtype=np.int32)
    previous = np.zeros(stride, dtype=np.int32)
    for row in range(height):
        start = row * (stride + 1)
        kind, line = raw[start], np.frombuffer(raw[start + 1 : start + 1 + stride], dtype=np.uint8).astype(np.int32)
        if kind == 0:
            current = line
        elif kind == 2:
            current = (line + previous) % 256
        else:
            current = np.zeros(stride, dtype=np.int32)
            for index in range(stride):
                left = current[index - channels] if index >= channels else 0
                up, corner = previous[index], previous[index - channels] if index >= channels else 0
                if kind == 1:
                    predictor = left
                elif kind == 3:
                    predictor = (left + up) // 2
                else:
                    estimate = left + up - corner
                    distances = (abs(estimate - left), abs(estimate - up), abs(estimate - corner))
                    predictor = (left, up, corner)[distances.index(min(distances))]
                current[index] = (line[index] + predictor) % 256
        image[row] = current
        previous = current
    return image.reshape(height, width, channels)[:, :, :3]

"""The sections of README.md and docs/ that `make bench` writes: each is opened and closed by its
markers exactly once, in that order, so that the benchmark can replace exactly what lies between."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[3]
DOCUMENTS = [PROJECT_ROOT / "README.md", *sorted((PROJECT_ROOT / "docs").glob("*.md"))]
MARKER = re.compile(r"<!-- bench:(start|end) ([a-z-]+) -->")


def markers(document: Path) -> list[tuple[str, str]]:
    return [(match[2], match[1]) for match in MARKER.finditer(document.read_text())]


def test_some_documents_hold_generated_sections() -> None:
    assert any(markers(document) for document in DOCUMENTS)


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: path.name)
def test_each_section_opens_and_closes_once_in_order(document: Path) -> None:
    found = markers(document)
    for name in {name for name, _ in found}:
        assert [kind for section, kind in found if section == name] == ["start", "end"], (document.name, name)

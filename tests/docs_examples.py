"""The examples the README and docs/ show, read from their fenced blocks so that tests can run them.

A deliberately small parser rather than a doctest tool: the documents are ordinary Markdown read on
GitHub, so the examples stay plain shell and Python, and the only conventions are ones a reader
already follows. In a ```bash block, a command starting with `curl` runs to the next line starting
with `#` (its quoted JSON may span lines, as shlex reads it); the `# ` lines right after it are its
output, where `...` stands for any text. A `# MODEL=models/<spec>.toml` line applies to the rest of
its block: those examples need that model's package. Other commands (make, sam, aws) build or
deploy and are not run; ```text blocks are never run. A ```python block with `# ` output lines at
its end is a script whose stdout they show.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from build import PROJECT_ROOT

DOCUMENTS = [PROJECT_ROOT / "README.md", *sorted((PROJECT_ROOT / "docs").glob("*.md"))]
LOCAL_URL = "http://127.0.0.1:3000"
DEFAULT_MODEL = "models/iris.toml"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
MODEL_LINE = re.compile(r"^# MODEL=(models/\w+\.toml)")


@dataclass(frozen=True)
class Example:
    """One command or script a document shows, with the output it shows for it."""

    document: str
    code: str
    shown: str
    model: str = DEFAULT_MODEL

    @property
    def id(self) -> str:
        return f"{self.document}: {' '.join(self.code.split())[:70]}"

    def curl_arguments(self, base_url: str) -> list[str]:
        """The command's arguments after `curl`, aimed at `base_url` instead of the local default."""
        # A backslash at a line's end continues the command, as in the shell.
        return shlex.split(self.code.replace("\\\n", " ").replace(LOCAL_URL, base_url))[1:]

    def matches(self, output: str) -> bool:
        """Whether `output` is what the document shows, `...` standing for any text."""
        pattern = ".*".join(re.escape(part) for part in self.shown.split("..."))
        return re.fullmatch(pattern, output.strip(), re.DOTALL) is not None


def blocks(language: str, documents: Sequence[Path] = DOCUMENTS) -> list[tuple[str, str]]:
    """(document, block text) for every fenced block of `language` in `documents`."""
    return [
        (str(path.relative_to(PROJECT_ROOT)) if path.is_relative_to(PROJECT_ROOT) else path.name, match[2])
        for path in documents
        for match in FENCE.finditer(path.read_text())
        if match[1] == language
    ]


def curl_examples(documents: Sequence[Path] = DOCUMENTS) -> list[Example]:
    examples: list[Example] = []
    for document, text in blocks("bash", documents):
        model = DEFAULT_MODEL
        command: list[str] = []
        shown: list[str] = []
        for line in [*text.splitlines(), ""]:
            if command and line.startswith("# "):
                shown.append(line.removeprefix("# "))
            elif command and not shown and line.strip() and not line.startswith("curl "):
                command.append(line)
            else:
                if command:
                    examples.append(Example(document, "\n".join(command), "\n".join(shown), model))
                command, shown = ([line] if line.startswith("curl ") else []), []
                if found := MODEL_LINE.match(line):
                    model = found[1]
    return examples


def python_examples(documents: Sequence[Path] = DOCUMENTS) -> list[Example]:
    examples = []
    for document, text in blocks("python", documents):
        lines = text.splitlines()
        shown = [line for line in lines if line.startswith("# ")]
        code = [line for line in lines if not line.startswith("# ")]
        examples.append(Example(document, "\n".join(code), "\n".join(line.removeprefix("# ") for line in shown)))
    return examples

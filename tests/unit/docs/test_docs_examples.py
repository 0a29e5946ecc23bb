"""The parser that reads the examples out of the README and docs/ (tests/docs_examples.py): what it
takes for a command, its shown output and its model, and how `...` in the shown output matches."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from tests.docs_examples import DEFAULT_MODEL, LOCAL_URL, Example, curl_examples, python_examples

DOCUMENT = """# Title

```bash
make start-api   # not run: it builds
curl -X POST http://127.0.0.1:3000/predict \\
  -H "Content-Type: application/json" \\
  -d '{"features": [1,
  2]}'
# {"prediction":1}

# a description, not output
curl http://127.0.0.1:3000/
# {"status":"ok",...}
# second line
```

```bash
# MODEL=models/other.toml
curl http://127.0.0.1:3000/model
# {"name":"other"}
```

```text
curl http://example.com/never-run
# never compared
```

```python
print(1)
# 1
```
"""


def test_commands_their_output_and_their_model(tmp_path: Path) -> None:
    (document := tmp_path / "doc.md").write_text(DOCUMENT)

    examples = curl_examples([document])

    assert [(example.shown, example.model) for example in examples] == [
        ('{"prediction":1}', DEFAULT_MODEL),
        ('{"status":"ok",...}\nsecond line', DEFAULT_MODEL),
        ('{"name":"other"}', "models/other.toml"),
    ]
    assert examples[0].curl_arguments("http://host:1") == [
        "-X",
        "POST",
        "http://host:1/predict",
        "-H",
        "Content-Type: application/json",
        "-d",
        '{"features": [1,\n  2]}',
    ]
    assert examples[2].curl_arguments(LOCAL_URL) == ["http://127.0.0.1:3000/model"]


def test_a_python_block_is_a_script_with_its_printed_lines(tmp_path: Path) -> None:
    (document := tmp_path / "doc.md").write_text(DOCUMENT)

    assert [(example.code, example.shown) for example in python_examples([document])] == [("print(1)", "1")]


@given(text=st.text(st.characters(blacklist_characters=".~"), min_size=1).map(str.strip), data=st.data())
def test_dots_stand_for_any_text_and_nothing_else_differs(text: str, data: st.DataObject) -> None:
    start = data.draw(st.integers(0, len(text)))
    end = data.draw(st.integers(start, len(text)))
    elided = Example("doc.md", "curl", f"{text[:start]}...{text[end:]}")
    exact = Example("doc.md", "curl", text)

    assert elided.matches(text)
    assert exact.matches(text)
    assert not exact.matches(f"~{text}")
    assert not exact.matches(f"{text}~")
    # Text before the dots must be there as shown; text elided may be anything.
    assert elided.matches(f"~{text}") == (start == 0)

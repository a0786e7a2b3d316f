"""The front door: a README read in minutes whose links all lead somewhere, and docs whose links do too."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAX_README_LINES = 250


def _links(md: Path) -> list[str]:
    return [
        t
        for t in re.findall(r"\]\(([^)\s]+)\)", md.read_text())
        if not t.startswith(("http://", "https://", "#", "mailto:"))
    ]


def test_the_readme_is_short_and_starts_with_the_two_quick_start_commands() -> None:
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= MAX_README_LINES
    blocks = re.findall(r"```bash\n(.*?)```", text, re.S)
    assert blocks[0].strip() == "python3 -m pip install -e . && speech2vid demo"
    assert blocks[1].strip() == 'python3 -m pip install -e ".[test]" && python3 -m pytest -q'
    assert blocks[1].strip().split(" && ")[-1] in (ROOT / ".ci" / "run").read_text()  # what CI runs


def test_every_relative_link_in_the_readme_and_docs_exists() -> None:
    missing = [
        (str(md.relative_to(ROOT)), t)
        for md in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
        for t in _links(md)
        if not (md.parent / t.split("#")[0]).exists()
    ]
    assert missing == []

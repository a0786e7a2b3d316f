"""Plain-text tables for the terminal (and Markdown code blocks): a header, a rule, aligned columns."""

from __future__ import annotations

from typing import Collection, Sequence


def table_lines(head: Sequence[str], rows: Sequence[Sequence[str]], right: Collection[int] = ()) -> list[str]:
    """Lines of a table; columns are padded to their widest cell, those in ``right`` right-aligned."""
    widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h) for i, h in enumerate(head)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))
        ).rstrip()

    return [line(head), line(["-" * w for w in widths]), *(line(row) for row in rows)]

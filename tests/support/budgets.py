"""The DynamoDB request budget of every action, read from docs/data-model.md (the one source)."""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "data-model.md"
_ROW = re.compile(r"^\|\s*`([^`]+)`\s*\|\s*(\d+)\s*\|")


def budgets() -> dict[str, int]:
    """``{action: max requests}`` from the access-pattern table (rows: | `name` | budget | ...)."""
    out: dict[str, int] = {}
    in_table = False
    for line in DOC.read_text().splitlines():
        if line.startswith("## Access patterns"):
            in_table = True
            continue
        if in_table and line.startswith("## "):
            break
        match = _ROW.match(line) if in_table else None
        if match:
            out[match.group(1)] = int(match.group(2))
    return out

"""The core stays pure: beyond the import contracts (lint-imports), no clock and no file reads."""

from __future__ import annotations

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parents[1] / "service" / "proxyvote" / "core"

# Calls that read the clock or the file system, by their attribute or function name.
CLOCK = {"now", "today", "utcnow", "time", "monotonic", "perf_counter"}
FILES = {"open", "read_text", "read_bytes", "write_text", "write_bytes", "glob", "iterdir"}


def impure_calls(source: str) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        if name in CLOCK | FILES:
            found.append((node.lineno, name))
    return found


def test_the_detector_finds_a_clock_read_and_a_file_read():
    assert impure_calls("import datetime as dt\nx = dt.date.today()\n") == [(2, "today")]
    assert impure_calls("open('taxonomy.yaml').read()\n") == [(1, "open")]


def test_no_core_module_reads_the_clock_or_a_file():
    offenders = {
        path.name: calls for path in sorted(CORE.glob("*.py")) if (calls := impure_calls(path.read_text()))
    }
    assert offenders == {}

"""Test modules have unique names: pytest imports them by basename (no packages under tests/)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def test_no_two_test_modules_share_a_name() -> None:
    # Rule: two test modules with one basename each pass alone and stop the whole suite at collection.
    names = Counter(p.name for p in TESTS.rglob("test_*.py"))
    assert {n for n, c in names.items() if c > 1} == set()

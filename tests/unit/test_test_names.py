"""Test modules have unique names: pytest imports them by basename (no packages under tests/)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def test_no_two_test_modules_share_a_name() -> None:
    # Two helpers once added tests/unit/core/test_payouts.py and tests/integration/test_payouts.py:
    # each passed alone, and the whole suite stopped at collection.
    names = Counter(p.name for p in TESTS.rglob("test_*.py"))
    assert {n for n, c in names.items() if c > 1} == set()

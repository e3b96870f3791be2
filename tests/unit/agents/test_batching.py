"""The write-back cache over tables, without Faust (with Faust: test_batch_wiring.py)."""

from __future__ import annotations

from typing import Any

from agents.batching import WriteBack


def test_write_back_reads_through_and_writes_once() -> None:
    backing: dict[str, Any] = {"a": 1, "b": 2}
    writes: list[str] = []

    class Spy(dict[str, Any]):
        def __setitem__(self, k: str, v: Any) -> None:
            writes.append(k)
            super().__setitem__(k, v)

    spy = Spy(backing)
    wb: WriteBack[Any] = WriteBack(spy)
    wb["a"] = 10
    wb["a"] = 11
    del wb["b"]
    wb["c"] = 3
    assert wb["a"] == 11 and wb.get("b") is None and sorted(wb) == ["a", "c"]
    assert spy == {"a": 1, "b": 2}  # nothing written yet
    assert wb.flush() == 3
    assert spy == {"a": 11, "c": 3} and writes == ["a", "c"]

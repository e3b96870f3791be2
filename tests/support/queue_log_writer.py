"""A stand-in for Asterisk writing its queue_log, run as its own process by the follow test.

    python tests/support/queue_log_writer.py PLAN.json

PLAN: {"log": path, "state": the follower's state file, "lines": [...], "steps": [...]}, each
step one of
- {"write": [from, to]}: lines[from:to] appended a few at a time, every third one in two writes
  (so the follower meets a line still being written);
- {"rotate": n}: the log renamed to log.ROT (as `logger rotate`), n more lines of the plan
  appended to the renamed file (a writer that has not reopened yet), a pause with no file at the
  path, then a new empty file;
- {"truncate": true}: once the follower's state says it consumed the whole file (the lines a
  truncation destroys unread are lost by any tail -F), the file is truncated in place.
Standard library only; exits 0 when the plan is done, 3 if the follower never caught up.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

PAUSE_S = 0.004  # between two small writes: the follower reads while the file grows
CATCH_UP_S = 40.0


def write_lines(log: Path, lines: list[str]) -> None:
    with log.open("a", encoding="utf-8") as f:
        for i, line in enumerate(lines):
            if i % 3 == 2:
                half = len(line) // 2
                f.write(line[:half])
                f.flush()
                time.sleep(PAUSE_S)
                f.write(line[half:] + "\n")
            else:
                f.write(line + "\n")
            f.flush()
            if i % 4 == 3:
                time.sleep(PAUSE_S)


def caught_up(log: Path, state: Path) -> bool:
    try:
        pos = json.loads(state.read_text(encoding="utf-8"))["position"]
        st = os.stat(log)
    except (OSError, ValueError, KeyError):
        return False
    return (pos["dev"], pos["ino"], pos["offset"]) == (st.st_dev, st.st_ino, st.st_size)


def main(plan_path: str) -> int:
    plan = json.loads(Path(plan_path).read_text(encoding="utf-8"))
    log, state, lines = Path(plan["log"]), Path(plan["state"]), plan["lines"]
    rotations = 0
    at = 0
    for step in plan["steps"]:
        if "write" in step:
            start, end = step["write"]
            write_lines(log, lines[start:end])
            at = end
        elif "rotate" in step:
            rotations += 1
            old = log.with_name(f"{log.name}.{rotations}")
            log.rename(old)
            write_lines(old, lines[at : at + step["rotate"]])
            at += step["rotate"]
            time.sleep(0.3)
            log.touch()
        elif "truncate" in step:
            deadline = time.monotonic() + CATCH_UP_S
            while not caught_up(log, state):
                if time.monotonic() > deadline:
                    print("the follower never caught up before the truncation", file=sys.stderr)
                    return 3
                time.sleep(0.05)
            with log.open("r+", encoding="utf-8") as f:
                f.truncate(0)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))

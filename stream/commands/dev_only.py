"""The developer packages (`stream.devenv`, `stream.devtools`, `stream.bench`) as needed by commands.

Those packages are not in the runtime wheel: `kpistream demo` and `kpistream bench` exist in
every install (their --help too) but run only from a source checkout, and say so. A command
calls `require_dev_packages` first, then imports from the packages inside its `run`.
"""

from __future__ import annotations

import importlib.util

from stream.errors import KpiStreamError


def require_dev_packages(command: str, *packages: str) -> None:
    """Raise `KpiStreamError` saying that `kpistream <command>` needs a source checkout, if it does."""
    missing = [p for p in packages if importlib.util.find_spec(p) is None]
    if missing:
        raise KpiStreamError(
            f"{command} is a developer tool: it runs from a source checkout "
            f"(git clone, then pip install -e '.[dev,embedded]'); not installed here: {', '.join(missing)}"
        )

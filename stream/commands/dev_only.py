"""Imports of the developer packages (`stream.devenv`, `stream.devtools`, `stream.bench`) by commands.

Those packages are not in the runtime wheel: `kpistream demo` and `kpistream bench` exist in
every install (their --help too) but run only from a source checkout, and say so.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from stream.errors import KpiStreamError


def dev_module(name: str, command: str) -> ModuleType:
    """Import `name`, or explain that `kpistream <command>` needs a source checkout."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name is None or not name.startswith(exc.name):
            raise  # a missing dependency inside the package, not the package itself
        raise KpiStreamError(
            f"kpistream {command} is a developer tool: it runs from a source checkout "
            f"(git clone, then pip install -e '.[dev,embedded]'), and {exc.name} is not installed here"
        ) from None

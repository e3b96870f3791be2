"""The `helm` binary for the chart tests: found, or built once from the Go module proxy and cached.

Order: `$KPISTREAM_HELM`, `helm` on PATH, the cache (`bin/` beside `$KPISTREAM_CACHE`, else
`<repo>/.cache/bin`), and last `go install helm.sh/helm/v3/cmd/helm@HELM_VERSION` into that
cache (several minutes on two cores, once). Without helm and without Go the caller skips.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

HELM_VERSION = "v3.22.0"
HELM_MODULE = f"helm.sh/helm/v3/cmd/helm@{HELM_VERSION}"
INSTALL_TIMEOUT_S = 1800

REPO = Path(__file__).resolve().parents[2]


class HelmUnavailable(Exception):
    """Neither a helm binary nor a Go toolchain to build one."""


def cache_bin() -> Path:
    """Where a built helm is kept: beside the Kafka jar cache, so clones and worktrees share it."""
    env = os.environ.get("KPISTREAM_CACHE")
    base = Path(env).expanduser().resolve().parent if env else REPO / ".cache"
    return base / "bin"


def find_helm() -> Path | None:
    """An existing helm binary, or None."""
    explicit = os.environ.get("KPISTREAM_HELM")
    if explicit:
        return Path(explicit)
    on_path = shutil.which("helm")
    if on_path:
        return Path(on_path)
    cached = cache_bin() / "helm"
    return cached if os.access(cached, os.X_OK) else None


def ensure_helm() -> Path:
    """A helm binary, built with `go install` into the cache when there is none."""
    found = find_helm()
    if found:
        return found
    go = shutil.which("go")
    if go is None:
        raise HelmUnavailable(f"no helm and no Go toolchain to build it ({HELM_MODULE})")
    target = cache_bin()
    target.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "GOBIN": str(target)}
    proc = subprocess.run(
        [go, "install", HELM_MODULE],
        env=env,
        capture_output=True,
        text=True,
        timeout=INSTALL_TIMEOUT_S,
        check=False,
    )
    helm = target / "helm"
    if proc.returncode != 0 or not os.access(helm, os.X_OK):
        raise RuntimeError(f"go install {HELM_MODULE} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return helm

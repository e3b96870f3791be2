"""`kpistream bench`: end-to-end benchmarks of the worker against baselines measured in the same run.

Every figure is reported beside a baseline taken on the same machine, in the same run, so the
ratios stay meaningful on a busy machine (see docs/benchmarks.md for the method).

A developer tool: not part of the runtime wheel (pyproject.toml), run from a source checkout.
"""

"""Developer tools that the runtime never imports: the worker as a subprocess for tests, demo and bench.

Like `stream.devenv` and `stream.bench`, this package is not part of the runtime wheel
(see pyproject.toml); it is used from a source checkout (`pip install -e .`).
"""

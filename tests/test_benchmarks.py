"""The benchmark suite's registry: every suite module is listed once, under its prefix."""

from __future__ import annotations

import pkgutil
from pathlib import Path

import benchmarks
from benchmarks.__main__ import SUITES


def test_every_benchmark_module_with_records_is_a_listed_suite():
    here = Path(benchmarks.__file__).parent
    modules = {info.name for info in pkgutil.iter_modules([str(here)])
               if not info.name.startswith("_")}
    listed = {module.__name__.rsplit(".", 1)[1] for module in SUITES.values()}
    with_records = {name for name in modules
                    if callable(getattr(__import__(f"benchmarks.{name}", fromlist=["x"]),
                                        "records", None))}
    assert with_records == listed, f"benchmarks/ modules not in SUITES: {with_records - listed}"
    assert len(set(SUITES.values())) == len(SUITES), "a module listed under two prefixes"

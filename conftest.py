"""Repository-wide pytest hooks: the execution time of every solution notebook, as
tests/test_notebook_checks.py measured it (the test itself fails a notebook over budget)."""

from __future__ import annotations

import pytest

from tools.course import NOTEBOOK_BUDGET_S

_notebook_seconds: dict[str, float] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    for key, value in report.user_properties:
        if key == "notebook_seconds":
            _notebook_seconds[report.nodeid.split("[", 1)[-1].rstrip("]")] = value


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _notebook_seconds:
        return
    terminalreporter.section("solution notebook execution time")
    for name, seconds in sorted(_notebook_seconds.items()):
        flag = "" if seconds <= NOTEBOOK_BUDGET_S else f"  OVER BUDGET ({NOTEBOOK_BUDGET_S:.0f} s)"
        terminalreporter.write_line(f"{seconds:7.1f} s  {name}{flag}")

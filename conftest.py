"""Repository-wide pytest hooks: the time budget of every executed notebook (nbval)."""

from __future__ import annotations

from collections import defaultdict

import pytest

# Each solution notebook must execute within the course's budget on 2 cores. It works like
# a timeout, not a speed claim: CI fails when a notebook outgrows what learners get.
from tools.course import NOTEBOOK_BUDGET_S

_notebook_seconds: dict[str, float] = defaultdict(float)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    path = report.nodeid.split("::", 1)[0]
    if path.endswith(".ipynb"):
        _notebook_seconds[path] += report.duration


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _notebook_seconds:
        return
    terminalreporter.section("notebook execution time (nbval)")
    for path, seconds in sorted(_notebook_seconds.items()):
        flag = "" if seconds <= NOTEBOOK_BUDGET_S else f"  OVER BUDGET ({NOTEBOOK_BUDGET_S:.0f} s)"
        terminalreporter.write_line(f"{seconds:7.1f} s  {path}{flag}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    over = [p for p, s in _notebook_seconds.items() if s > NOTEBOOK_BUDGET_S]
    if over and exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED

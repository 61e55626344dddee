"""Each solution notebook runs without error within the course's budget, each listed wrong
answer fails the visible tests with a message that points to it, and every explanation a
notebook prints agrees with what it measured (tests/notebook_checks).

This is the one place the test suite executes a solution notebook as it stands (the grading
round trips execute it again, as nbgrader does): every assignment has a checks module.
"""

from __future__ import annotations

import json
import re
from datetime import datetime

import nbformat
import pytest
from nbclient import NotebookClient

from tests.notebook_checks import MAX_MESSAGE, Mistake, module_for
from tools.course import NOTEBOOK_BUDGET_S, RELEASED, SOLUTIONS, assignments
from tools.kernel_client import wakeful_config

CELL_TIMEOUT_S = 300
CHECKED = [a for a in assignments() if module_for(a) is not None]
ADDED = ("# probe (tests/test_notebook_checks.py)", "# claims (tests/test_notebook_checks.py)")

PROBE = '''\
# probe (tests/test_notebook_checks.py): wrong answers against this exercise's tests
import json as _json
_probe = {{}}
for _name, _code in {mistakes!r}:
    _probe[_name] = {{}}
    for _which, _tests in (("visible", {visible!r}), ("full", {full!r})):
        try:
            exec(compile(_code, "<mistake " + _name + ">", "exec"), globals())
            exec(compile(_tests, "<" + _which + " tests>", "exec"), globals())
            _probe[_name][_which] = None
        except Exception as _err:
            _probe[_name][_which] = type(_err).__name__ + ": " + str(_err)
exec(compile({answer!r}, "<the solution>", "exec"), globals())
with open({out!r}, "a") as _f:
    _f.write(_json.dumps({{"answer": {answer_id!r}, "results": _probe}}) + "\\n")
'''


def _graded(nb) -> dict[str, tuple[int, nbformat.NotebookNode]]:
    return {c.metadata["nbgrader"]["grade_id"]: (i, c) for i, c in enumerate(nb.cells)
            if c.metadata.get("nbgrader", {}).get("grade_id")}


def _test_cell_after(nb, index: int) -> tuple[int, nbformat.NotebookNode]:
    for j in range(index + 1, len(nb.cells)):
        meta = nb.cells[j].metadata.get("nbgrader", {})
        if meta.get("grade") and nb.cells[j].cell_type == "code":
            return j, nb.cells[j]
    raise LookupError(f"no test cell after cell {index}")


def probed_notebook(assignment: str, out: str) -> tuple[nbformat.NotebookNode, list[Mistake]]:
    """The solution notebook with a probe after each test cell whose exercise has mistakes."""
    checks = module_for(assignment)
    name = f"{assignment}.ipynb"
    source = nbformat.read(SOLUTIONS / assignment / name, as_version=4)
    released = _graded(nbformat.read(RELEASED / assignment / name, as_version=4))
    graded = _graded(source)
    by_answer: dict[str, list[Mistake]] = {}
    answers = sorted(k for k, (_, c) in graded.items() if c.metadata["nbgrader"].get("solution"))
    for m in checks.MISTAKES:
        assert m.answer in answers, (f"{checks.__name__}: mistake {m.name!r} names {m.answer!r}, "
                                     f"not an answer cell of {assignment} ({answers})")
        by_answer.setdefault(m.answer, []).append(m)
    probes = []
    for answer, mistakes in by_answer.items():
        index, answer_cell = graded[answer]
        test_index, test_cell = _test_cell_after(source, index)
        test_id = test_cell.metadata["nbgrader"]["grade_id"]
        code = PROBE.format(mistakes=[(m.name, m.code) for m in mistakes],
                            visible=released[test_id][1].source, full=test_cell.source,
                            answer=answer_cell.source, answer_id=answer, out=out)
        probes.append((test_index, nbformat.v4.new_code_cell(code)))
    for test_index, cell in sorted(probes, key=lambda p: -p[0]):
        source.cells.insert(test_index + 1, cell)
    if checks.CLAIMS.strip():
        source.cells.append(nbformat.v4.new_code_cell(
            "# claims (tests/test_notebook_checks.py): the prose agrees with the measurements\n"
            + checks.CLAIMS))
    return source, list(checks.MISTAKES)


def test_every_assignment_has_a_checks_module():
    missing = [a for a in assignments() if a not in CHECKED]
    assert not missing, (f"no tests/notebook_checks/nbNN.py for {missing}: without one the "
                         f"solution notebook is never executed as it stands")


def notebook_seconds(nb: nbformat.NotebookNode) -> float:
    """Execution time of the notebook's own cells (nbclient's timings; probes excluded)."""
    total = 0.0
    for cell in nb.cells:
        timing = cell.metadata.get("execution", {})
        if cell.cell_type != "code" or cell.source.startswith(ADDED) or not timing:
            continue
        start = datetime.fromisoformat(timing["iopub.execute_input"].replace("Z", "+00:00"))
        end = datetime.fromisoformat(timing["shell.execute_reply"].replace("Z", "+00:00"))
        total += (end - start).total_seconds()
    return total


@pytest.mark.parametrize("assignment", CHECKED)
def test_wrong_answers_fail_visibly_and_claims_follow_measurements(assignment, tmp_path,
                                                                   record_property):
    out = tmp_path / "probes.jsonl"
    nb, mistakes = probed_notebook(assignment, str(out))
    NotebookClient(nb, timeout=CELL_TIMEOUT_S, kernel_name="python3", allow_errors=False,
                   record_timing=True, config=wakeful_config(),
                   resources={"metadata": {"path": str(SOLUTIONS / assignment)}}).execute()
    # A timeout, not a speed claim: CI fails when a notebook outgrows what learners get.
    seconds = notebook_seconds(nb)
    record_property("notebook_seconds", seconds)
    assert seconds <= NOTEBOOK_BUDGET_S, (
        f"{assignment}: its cells ran {seconds:.0f} s, over the {NOTEBOOK_BUDGET_S:.0f} s "
        f"budget (2 cores, one thread per test worker)")
    results = {}
    for line in out.read_text().splitlines():
        record = json.loads(line)
        for name, got in record["results"].items():
            results[(record["answer"], name)] = got
    problems = []
    for m in mistakes:
        got = results[(m.answer, m.name)]
        visible, full = got["visible"], got["full"]
        where = f"{m.answer} / {m.name!r}"
        if visible is None:
            problems.append(f"{where}: passes the visible tests (Validate says success)")
        elif not re.search(m.expect, visible, re.IGNORECASE | re.DOTALL):
            problems.append(f"{where}: visible message does not match {m.expect!r}: "
                            f"{visible[:300]}")
        if full is None:
            problems.append(f"{where}: passes the full (graded) tests")
        for which, message in (("visible", visible), ("full", full)):
            if message is not None and len(message) > MAX_MESSAGE:
                problems.append(f"{where}: {which} message is {len(message)} characters "
                                f"(> {MAX_MESSAGE}): {message[:200]}...")
    assert not problems, f"{assignment}:\n  " + "\n  ".join(problems)


@pytest.mark.parametrize("assignment", CHECKED)
def test_the_released_test_cells_are_the_visible_part(assignment, tmp_path):
    """The probe's visible tests are the learner's: the released cell, byte for byte."""
    nb, _ = probed_notebook(assignment, str(tmp_path / "x"))
    probes = [c for c in nb.cells if c.source.startswith("# probe")]
    assert len(probes) == len({m.answer for m in module_for(assignment).MISTAKES})
    for cell in probes:
        assert "BEGIN HIDDEN TESTS" not in re.search(r'\("visible", (.*?)\), \("full"',
                                                     cell.source, re.DOTALL).group(1)

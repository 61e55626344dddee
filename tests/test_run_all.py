"""A released notebook runs all the way for a learner, as JupyterLab's *Run All* runs it.

JupyterLab sends every cell with ``stop_on_error=True``, so the kernel drops the rest of the
queue after the first error, except after a cell tagged ``raises-exception`` (sent with
``stop_on_error=False``). Before the learner answers anything, the exercise test cells fail,
as they must; tagged, they let the rest of the notebook run. nbclient with
``allow_errors=False`` behaves the same way: it stops at the first error of an untagged cell.
(JupyterLab: ``OutputArea.execute`` in @jupyterlab/outputarea; nbclient:
``NotebookClient.async_execute_cell`` and ``_check_raise_for_error``.)
"""

from __future__ import annotations

import os

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from tools.course import RELEASED, SOLUTIONS, assignments

TAG = "raises-exception"
CELL_TIMEOUT_S = 300


def _kind(cell) -> str:
    """'solution' (exercise answer), 'test' (autograded test) or 'demo' (everything else)."""
    meta = cell.metadata.get("nbgrader", {})
    if meta.get("grade") and cell.cell_type == "code":
        return "test"
    if meta.get("solution"):
        return "solution"
    return "demo"


def _name(index: int, cell) -> str:
    lines = cell.source.strip().splitlines()
    return f"cell {index} ({lines[0][:70] if lines else '<empty>'!r})"


def _error(cell) -> str | None:
    for out in cell.get("outputs", []):
        if out.output_type == "error":
            return f"{out.ename}: {out.evalue}"
    return None


@pytest.mark.parametrize("assignment", assignments())
def test_exercise_cells_are_tagged_raises_exception(assignment):
    """Every exercise answer and test cell of the source carries the tag (nbgrader keeps it)."""
    path = SOLUTIONS / assignment / f"{assignment}.ipynb"
    nb = nbformat.reads(path.read_text(), as_version=4)
    untagged = [_name(i, c) for i, c in enumerate(nb.cells)
                if c.cell_type == "code" and _kind(c) != "demo"
                and TAG not in c.metadata.get("tags", [])]
    assert not untagged, (f"{path.relative_to(SOLUTIONS.parent)}: exercise cells without the "
                          f"{TAG!r} tag stop JupyterLab's Run All for learners:\n  "
                          + "\n  ".join(untagged))


@pytest.mark.parametrize("assignment", assignments())
def test_released_notebook_runs_all_before_any_answer(assignment):
    """Every demo cell runs without error and every unanswered exercise's test cell fails."""
    folder = RELEASED / assignment
    nb = nbformat.reads((folder / f"{assignment}.ipynb").read_text(), as_version=4)
    client = NotebookClient(nb, timeout=CELL_TIMEOUT_S, kernel_name="python3", allow_errors=False,
                            resources={"metadata": {"path": str(folder)}})
    try:
        client.execute(env={**os.environ, "OMP_NUM_THREADS": "1"})
    except CellExecutionError:  # Run All stops here: the report below names the cell
        pass

    code = [(i, c) for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.source.strip()]
    ran = [(i, c) for i, c in code if c.get("execution_count") is not None]
    problems = []
    if len(ran) < len(code):
        i, cell = ran[-1] if ran else code[0]
        problems.append(f"Run All stopped at {_name(i, cell)}, a {_kind(cell)} cell "
                        f"{'tagged' if TAG in cell.metadata.get('tags', []) else 'not tagged'} "
                        f"{TAG!r}: {_error(cell)}; {len(code) - len(ran)} code cells after it "
                        "never ran")
    for i, cell in ran:
        kind, error = _kind(cell), _error(cell)
        if kind == "demo" and error:
            problems.append(f"{_name(i, cell)} fails before any exercise is answered "
                            f"(does it use a learner's function?): {error}")
        elif kind == "test" and not error:
            problems.append(f"{_name(i, cell)} is an unanswered exercise's test cell "
                            "but did not fail")
    # an explorer's callback that raises shows its traceback inside the widget, not the cell
    for state in client.widget_state.values():
        for out in state.get("outputs", []):
            if out.get("output_type") == "error":
                problems.append(f"an ipywidgets explorer shows an error before any exercise is "
                                f"answered: {out['ename']}: {out['evalue']}")
    assert not problems, (f"released {assignment}, run as JupyterLab's Run All:\n  "
                          + "\n  ".join(problems))

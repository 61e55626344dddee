"""A released notebook runs all the way for a learner, as JupyterLab's *Run All* runs it.

JupyterLab sends every cell with ``stop_on_error=True``, so the kernel drops the rest of the
queue after the first error, except after a cell tagged ``raises-exception`` (sent with
``stop_on_error=False``). Before the learner answers anything, the exercise test cells fail,
as they must; tagged, they let the rest of the notebook run. nbclient with
``allow_errors=False`` behaves the same way: it stops at the first error of an untagged cell.
(JupyterLab: ``OutputArea.execute`` in @jupyterlab/outputarea; nbclient:
``NotebookClient.async_execute_cell`` and ``_check_raise_for_error``.)

The tag is checked here, statically. That the untagged rest then runs without error is
checked where the released notebook is executed anyway: the untouched release is the "blank"
submission of ``test_course.py``'s grading round trip (only exercise cells may fail, no
explorer may show an error), and ``test_browser.py`` presses Run All in JupyterLab itself.
"""

from __future__ import annotations

import nbformat
import pytest

from tools.course import SOLUTIONS, assignments

TAG = "raises-exception"


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

"""The course end to end: released notebooks are current, and grading round trips work."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tools.audit import audit_notebook
from tools.course import (
    RELEASED,
    SOLUTIONS,
    assignments,
    autograded_scores,
    generate,
    nbgrader,
    release_diff,
    scratch_course,
    submit,
)
from tools.grading import html_text, secret_lines

ASSIGNMENTS = assignments()


def test_every_assignment_has_one_notebook_and_released_copy():
    assert ASSIGNMENTS, "solutions/ holds no assignment"
    for a in ASSIGNMENTS:
        assert (SOLUTIONS / a / f"{a}.ipynb").exists(), f"solutions/{a}/{a}.ipynb is missing"


def _cells(path: Path) -> list[dict]:
    return json.loads(path.read_text())["cells"]


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_solution_follows_the_notebook_contract(assignment):
    cells = _cells(SOLUTIONS / assignment / f"{assignment}.ipynb")
    meta = [c["metadata"].get("nbgrader", {}) for c in cells]
    graded = [(m, c) for m, c in zip(meta, cells, strict=True) if m.get("grade")]
    auto = [m for m, c in graded if c["cell_type"] == "code"]
    written = [m for m, c in graded if c["cell_type"] == "markdown"]
    assert 3 <= len(auto) <= 6, f"{assignment}: {len(auto)} graded test cells, want 3-6"
    assert all(m.get("points", 0) > 0 for m in auto + written), "every graded cell has points"
    assert written, f"{assignment}: needs at least one written (manually graded) question"
    sources = ["".join(c["source"]) for c in cells]
    assert all("### BEGIN HIDDEN TESTS" in "".join(c["source"])
               for _, c in graded if c["cell_type"] == "code"), "every test cell has hidden tests"
    assert "set_seed(" in sources[1], "the first code cell seeds everything"
    assert any("widgets." in s for s in sources), "at least one ipywidgets explorer"
    assert "Objectives" in sources[0], "the first cell states the objectives"
    assert "Summary" in "".join(sources[-2:]), "the notebook ends with a summary"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_released_notebooks_are_up_to_date(assignment, tmp_path):
    fresh = generate(scratch_course(tmp_path, assignment), assignment)
    problems = release_diff(assignment, RELEASED / assignment, fresh)
    assert not problems, "notebooks/ is stale; run `make release`:\n" + "\n".join(problems)


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_released_notebooks_hide_solutions_and_hidden_tests(assignment):
    text = (RELEASED / assignment / f"{assignment}.ipynb").read_text()
    for marker in ("BEGIN SOLUTION", "BEGIN HIDDEN TESTS", "accel_lib.bench import summarize_ms"):
        assert marker not in text, f"released {assignment} leaks {marker!r}"
    assert "raise NotImplementedError()" in text


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_grading_round_trip(assignment, tmp_path):
    """Release; submit the full solution and the untouched release; autograde; feedback."""
    course = scratch_course(tmp_path, assignment)
    released = generate(course, assignment)
    submit(course, "full", assignment, SOLUTIONS / assignment)
    submit(course, "blank", assignment, released)
    log = nbgrader(course, "autograde", assignment)
    # no test cell was edited: no warning (stock nbgrader warns for each, hidden tests)
    log = log.stdout + log.stderr
    assert "Attribute 'checksum'" not in log and "was edited" not in log, log
    nbgrader(course, "generate_feedback", assignment)

    scores = autograded_scores(course, assignment)
    assert set(scores) == {"full", "blank"}
    full, blank = scores["full"], scores["blank"]
    assert full.max_auto > 0 and full.max_total > full.max_auto  # a written question exists
    assert full.auto == full.max_auto, f"solution scored {full.auto} of {full.max_auto}"
    assert blank.auto == 0, f"untouched release scored {blank.auto}, expected 0"
    # feedback shows the failures, never the hidden tests' source
    secret = secret_lines(SOLUTIONS / assignment / f"{assignment}.ipynb",
                          released / f"{assignment}.ipynb")
    pages = {student: html_text((course / "feedback" / student / assignment
                                 / f"{assignment}.html").read_text())
             for student in ("full", "blank")}
    for student, text in pages.items():
        leaked = sorted(line for line in secret if line in text)
        assert not leaked, f"{student}'s feedback shows hidden tests: {leaked[:3]}"
        assert "hidden tests (not shown)" in text
    assert "NotImplementedError" in pages["blank"]  # the unanswered exercises, named
    # A learner who skips the exercises can still run the rest of the notebook: in the
    # untouched release only exercise and test cells fail.
    graded = course / "autograded" / "blank" / assignment / f"{assignment}.ipynb"
    errors = [(cell, any(v for k, v in cell["metadata"].get("nbgrader", {}).items()
                         if k in ("solution", "grade")))
              for cell in _cells(graded) if cell["cell_type"] == "code"
              and any(o["output_type"] == "error" for o in cell.get("outputs", []))]
    assert any(exercise for _, exercise in errors), "the untouched exercises raise"
    failing = ["".join(cell["source"])[:60] for cell, exercise in errors if not exercise]
    assert not failing, f"cells that fail without the exercises: {failing}"
    # an explorer's callback that raises shows its traceback inside the widget, not the cell
    assert _widget_states(graded), "no explorer's state saved: every notebook has one"
    assert not _widget_errors(graded), (
        f"an ipywidgets explorer shows an error before any exercise is answered: "
        f"{_widget_errors(graded)}")


def _widget_states(path: Path) -> dict[str, dict]:
    """The widget models saved in an executed notebook's metadata, by model id."""
    meta = json.loads(path.read_text())["metadata"].get("widgets", {})
    return meta.get("application/vnd.jupyter.widget-state+json", {}).get("state", {})


def _widget_errors(path: Path) -> list[str]:
    """The errors in the saved widget state of an executed notebook (Output widgets)."""
    return [f"{out['ename']}: {out['evalue']}" for state in _widget_states(path).values()
            for out in state.get("state", {}).get("outputs", [])
            if out.get("output_type") == "error"]


def test_hostile_submission_cannot_stall_or_fool_the_grader(tmp_path):
    """A submission that loops forever and shadows the checkers loses exactly those points."""
    assignment = "00_measuring_speed"
    course = scratch_course(tmp_path, assignment)
    generate(course, assignment)
    path = submit(course, "hostile", assignment, SOLUTIONS / assignment)
    nb = json.loads(path.read_text())
    for cell in nb["cells"]:
        grade_id = cell["metadata"].get("nbgrader", {}).get("grade_id")
        if grade_id == "ex1_summarize":  # wrong answer, and a checker that never fails
            cell["source"] = ("check_close = check_equal = lambda *a, **k: None\n"
                              "def summarize(samples_ms):\n    return (0.0, 0.0)\n")
        elif grade_id == "ex1_tests":  # an edited test cell is graded as the instructor's
            cell["source"] = "pass  # " + "".join(cell["source"])
        elif grade_id == "ex2_conv_flops":  # never returns
            cell["source"] = "while True:\n    pass\n"
        elif grade_id == "ex3_tests":  # turning a test cell into a plain cell does not skip it
            cell["source"] = "pass"
            del cell["metadata"]["nbgrader"]
    nb["cells"] = [c for c in nb["cells"]  # deleting a test cell does not skip it either
                   if c["metadata"].get("nbgrader", {}).get("grade_id") != "ex4_tests"]
    path.write_text(json.dumps(nb))
    # the audit points at each attempt (nbgrader's grade is right whatever the audit says)
    released = course / "notebooks" / assignment / f"{assignment}.ipynb"
    found = {(f.grade_id, f.rule) for f in audit_notebook(path, released, "hostile")}
    assert found >= {("ex1_summarize", "shadows a checker"), ("ex1_tests", "test cell edited"),
                     ("ex3_tests", "test cell missing"), ("ex4_tests", "test cell missing")}
    log = nbgrader(course, "autograde", assignment, "--Execute.timeout=20")
    assert "Test cell ex1_tests was edited in hostile's submission" in log.stdout + log.stderr
    score = autograded_scores(course, assignment)["hostile"]
    # ex1 (2 pts) and ex2 (3 pts) lost; ex3 and ex4 keep their points: their solutions are
    # intact and their test cells come back from the gradebook.
    assert score.auto == score.max_auto - 5, f"hostile submission scored {score}"


def test_widget_errors_are_read_from_an_executed_notebook(tmp_path):
    """The round trip's widget check can fail: an explorer whose first call raises."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "from ipywidgets import interact\ninteract(lambda x: 1 / x, x=(0, 1))")])
    NotebookClient(nb, timeout=60, kernel_name="python3").execute()
    path = tmp_path / "explorer.ipynb"
    nbformat.write(nb, path)
    assert _widget_errors(path) == ["ZeroDivisionError: division by zero"]


def test_capstone_deliverable_that_misses_the_target_loses_exactly_its_points(tmp_path):
    """Notebook 10: a pipeline short of the target (int8 only: < 4x smaller, same FLOPs)
    loses the deliverable's 4 points and nothing else."""
    assignment = "10_capstone"
    course = scratch_course(tmp_path, assignment)
    generate(course, assignment)
    submit(course, "full", assignment, SOLUTIONS / assignment)
    path = submit(course, "missed", assignment, SOLUTIONS / assignment)
    nb = json.loads(path.read_text())
    for cell in nb["cells"]:
        if cell["metadata"].get("nbgrader", {}).get("grade_id") == "ex4_deliverable":
            cell["source"] = ("def build_pipeline():\n"
                              "    return [Step(\"ptq\", 8), Step(\"fold\")]\n")
    path.write_text(json.dumps(nb))
    nbgrader(course, "autograde", assignment)
    scores = autograded_scores(course, assignment)
    full, missed = scores["full"], scores["missed"]
    assert full.auto == full.max_auto, f"solution scored {full.auto} of {full.max_auto}"
    assert missed.auto == full.max_auto - 4, f"missed deliverable scored {missed}"

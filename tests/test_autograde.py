"""Parallel autograde (tools/autograde.py) leaves the gradebook serial nbgrader leaves.

One toy course (tests/test_grading.py's: one answer, one test cell with hidden tests, one
written answer) with four submissions: an honest one handed in on time, a blank one handed
in late, one whose kernel dies (nbgrader cannot grade it: exit status 1) and
one that loops (interrupted by the cell timeout, graded on the rest). Two copies of it are
autograded, one by ``nbgrader autograde``, one by ``python -m tools.autograde --jobs 2``,
and compared: every student's rows by name (``gradebook_state``: scores, needs_manual_grade,
comments, the submission times, late penalties, flags, the students' names), and the
autograded notebooks (outputs and all). "Exactly" means all of that; the database's random
ids, the order rows were written in and the clock times the kernel stamps on each executed
cell are the only differences. Then a grader's manual score and a forced
re-autograde of one student: both keep it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from tests.test_grading import _answer, _toy_course
from tools.autograde import autograde, gradebook_state
from tools.course import ROOT, nbgrader
from tools.grading import grade_by_hand

TIMEOUT = ["--Execute.timeout=2"]  # the looping submission is interrupted after 2 s
DUE = datetime(2030, 6, 30, 23, 59)


def _run(course: Path, *cmd: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *cmd], cwd=course, capture_output=True, text=True)


def _db(course: Path) -> str:
    return f"sqlite:///{course / 'gradebook.db'}"


def _notebooks(course: Path) -> dict[str, dict]:
    """The autograded notebooks by path (JSON), without the times the kernel ran each cell
    (``metadata.execution``: when, not what)."""
    out = {}
    for path in sorted((course / "autograded").rglob("*.ipynb")):
        nb = json.loads(path.read_text())
        for cell in nb["cells"]:
            cell["metadata"].pop("execution", None)
        out[str(path.relative_to(course))] = nb
    return out


@pytest.fixture(scope="module")
def toy(tmp_path_factory) -> Path:
    """A released toy assignment with a due date, a roster entry and four submissions."""
    from nbgrader.api import Gradebook

    course = _toy_course(tmp_path_factory.mktemp("toy"))
    shutil.copy(ROOT / "tools" / "autograde.py", course / "tools")  # as in the course's tools/
    nbgrader(course, "generate_assignment", "toy", "--force")
    with Gradebook(_db(course)) as gb:
        gb.update_or_create_assignment("toy", duedate=DUE)
        gb.add_student("honest", first_name="Ada", last_name="Lovelace", email="ada@uni.edu")
    _answer(course, "honest", "def double(x):\n    return 2 * x")
    _answer(course, "blank", None, written=None)
    _answer(course, "crash", "import os\nos._exit(1)")
    _answer(course, "loop", "def double(x):\n    while True:\n        pass")
    for student, when in (("honest", "2030-06-29 10:00:00"), ("blank", "2030-07-02 08:30:00")):
        (course / "submitted" / student / "toy" / "timestamp.txt").write_text(when)
    return course


def test_parallel_autograde_leaves_the_serial_gradebook(toy, tmp_path):
    serial = shutil.copytree(toy, tmp_path / "serial")
    parallel = shutil.copytree(toy, tmp_path / "parallel")
    done = _run(serial, "-m", "nbgrader", "autograde", "toy", *TIMEOUT)
    assert done.returncode == 1, done.stdout + done.stderr  # the crashing submission
    assert "error processing assignment 'toy' for student 'crash'" in done.stderr
    ran = _run(parallel, "-m", "tools.autograde", "toy", "--jobs", "2", "--", *TIMEOUT)
    assert ran.returncode == 1, ran.stdout + ran.stderr
    out = ran.stdout
    assert "with 2 worker(s)" in out and "3 of 4 submission(s) autograded" in out, out
    assert "failed: crash" in out and "Kernel died" in out, out  # nbgrader's log, shown

    state = gradebook_state(_db(serial), "toy")
    assert gradebook_state(_db(parallel), "toy") == state
    assert _notebooks(parallel) == _notebooks(serial)
    assert sorted(p.split("/")[1] for p in _notebooks(serial)) == [
        "blank", "honest", "loop"]  # nbgrader removes what it failed to grade

    # what the comparison covered is what matters
    def grades(student: str) -> dict:
        return state[student]["submission"]["notebooks"]["toy"]["grades"]

    assert grades("honest")["double_tests"]["auto_score"] == 2.0
    assert grades("honest")["why"]["needs_manual_grade"] is True
    assert all(grades(s)["double_tests"]["auto_score"] == 0.0
               for s in ("blank", "loop"))
    assert grades("crash")["double_tests"]["auto_score"] is None  # never graded
    assert state["honest"]["student"]["first_name"] == "Ada"
    assert str(state["honest"]["submission"]["timestamp"]) == "2030-06-29 10:00:00"
    assert str(state["blank"]["submission"]["timestamp"]) == "2030-07-02 08:30:00"  # late

    # a grader's manual score survives a forced re-autograde of that student, both ways
    for course in (serial, parallel):
        from nbgrader.api import Gradebook

        with Gradebook(_db(course)) as gb:
            grade_by_hand(gb, "why", "toy", "toy", "honest", 1.0)
    again = _run(serial, "-m", "nbgrader", "autograde", "toy", "--force",
                 "--CourseDirectory.student_id=honest", *TIMEOUT)
    assert again.returncode == 0, again.stdout + again.stderr
    again = _run(parallel, "-m", "tools.autograde", "toy", "--student", "honest", "--force",
                 "--jobs", "2", "--", *TIMEOUT)
    assert again.returncode == 0 and "1 of 1 submission(s)" in again.stdout, again.stdout
    state = gradebook_state(_db(serial), "toy")
    assert gradebook_state(_db(parallel), "toy") == state
    assert grades("honest")["why"]["manual_score"] == 1.0  # kept (nbgrader asks to review it)


def test_parallel_autograde_refuses_what_it_cannot_do(toy, tmp_path):
    course = shutil.copytree(toy, tmp_path / "c")
    with pytest.raises(SystemExit, match="No assignment with ID 'nothere'"):
        autograde(course, "nothere", jobs=2)
    with pytest.raises(SystemExit, match="belong in nbgrader_config.py"):
        autograde(course, "toy", jobs=2, nbgrader_args=("--CourseDirectory.root=/",))
    with pytest.raises(SystemExit, match="--jobs must be at least 1"):
        autograde(course, "toy", jobs=0)
    (course / "gradebook.db").unlink()
    with pytest.raises(SystemExit, match="no gradebook"):
        autograde(course, "toy", jobs=2)
    assert not (course / "autograded").exists() and not (course / "gradebook.db").exists()
    said = []
    assert autograde(toy, "toy", jobs=2, student="nobody", log=said.append) == []
    assert said == ["no submissions of toy in submitted/"]

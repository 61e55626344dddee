"""Grading integrity: the audit of submissions, feedback without hidden tests, the CSV export.

The audit is static: these tests build submissions from the released notebooks with one
cheat each and check it is reported where it is (and that honest notebooks report nothing).
The feedback and export run through nbgrader itself on a one-exercise toy assignment.
"""

from __future__ import annotations

import copy
import csv
import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from tools.audit import audit_notebook, checker_names, imported_names, scan_cell
from tools.course import COURSE_PLUGINS, RELEASED, ROOT, SOLUTIONS, assignments, nbgrader
from tools.grading import grade_by_hand, html_text, scrub_traceback, secret_lines

ASSIGNMENTS = assignments()
A = ASSIGNMENTS[0]  # any assignment: the cheats bring their own imports


def _load(path: Path) -> dict:
    return json.loads(path.read_text())


def _source(cell: dict) -> str:
    return "".join(cell["source"])


def _meta(cell: dict) -> dict:
    return cell["metadata"].get("nbgrader", {})


def _write(nb: dict, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(nb))
    return path


# ---------------------------------------------------------------------------- the audit
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_audit_finds_nothing_in_solutions_and_releases(assignment):
    solution = SOLUTIONS / assignment / f"{assignment}.ipynb"
    released = RELEASED / assignment / f"{assignment}.ipynb"
    assert audit_notebook(solution, released) == []  # hidden tests are no edit
    assert audit_notebook(released, released) == []
    # stronger: every code cell a student may edit scans clean, the instructor's demos too
    # (locked test cells are compared with the release instead: never scanned)
    for path in (solution, released):
        cells = [c for c in _load(path)["cells"] if c["cell_type"] == "code"]
        code = [_source(c) for c in cells]
        modules, checkers = imported_names(code), checker_names(code)
        flagged = [(i, f) for i, (c, src) in enumerate(zip(cells, code, strict=True))
                   if not _meta(c).get("locked") for f in scan_cell(src, modules, checkers)]
        assert not flagged, f"{path.name}: false alarms {flagged}"


# (cheat appended to the first exercise's answer, the line that must be reported, rule)
CHEATS = [
    ("import numpy as np\nnp.isclose = lambda *a, **k: True", 2, "patches a module"),
    ("import torch\nsetattr(torch, 'allclose', lambda *a, **k: True)", 2, "patches a module"),
    ("import accel_lib.checks as c\nc.check_close = lambda *a, **k: None", 2,
     "patches a module"),
    ("from accel_lib import checks\nchecks.check_equal = print", 2, "patches a module"),
    ("from accel_lib.checks import check_close\n"
     "check_close.__code__ = (lambda *a, **k: None).__code__", 2, "patches a module"),
    ("import numpy\nm = numpy\nm.allclose = lambda *a, **k: True", 3, "patches a module"),
    ("import numpy as np, torch\nfor mod in (np, torch):\n    mod.allclose = max", 3,
     "patches a module"),
    ("import numpy as np\ndel np.testing", 2, "patches a module"),
    ("import sys\nsys.modules['accel_lib.checks'] = object()", 2, "sys.modules"),
    ("from sys import modules\nmodules.pop('accel_lib.checks')", 1, "sys.modules"),
    ("import builtins\nbuiltins.AssertionError = Warning", 2, "patches a module"),
    ("__builtins__.print = len", 1, "builtins"),
    ("get_ipython().showtraceback = lambda *a, **k: None", 1, "patches IPython"),
    ("ip = get_ipython()\nip.events.register('pre_run_cell', print)", 2, "patches IPython"),
    ("get_ipython().input_transformers_cleanup.append(lambda lines: [])", 1,
     "patches IPython"),
    ("setattr(get_ipython(), 'run_cell', print)", 1, "patches IPython"),
    ("text = open('../../solutions/x/x.ipynb').read()", 1, "file outside"),
    ("from pathlib import Path\nPath('/srv/course/solutions/x.ipynb').read_text()", 2,
     "file outside"),
    ("import os\nos.listdir(os.path.join('..', 'autograded'))", 2, "file outside"),
    ("from pathlib import Path\nnb = Path.cwd().parent / 'x.ipynb'", 2, "file outside"),
    ("p = '../sol' + 'utions'", 1, "file outside"),
    ("name = 'x'\np = f'../{name}/gradebook.db'", 2, "file outside"),
    ("!cat ~/course/solutions/x/x.ipynb", 1, "file outside"),
    ("%run /tmp/answers.py", 1, "file outside"),
    ("import importlib, accel_lib\nimportlib.reload(accel_lib)", 2, "reloads modules"),
    ("exec('import numpy; numpy.isclose = max')", 1, "dynamic code"),
    ("check_close = check_equal = lambda *a, **k: None", 1, "shadows a checker"),
    ("import sys\nexpected = sys._getframe(1).f_locals['ref']", 2, "reads the caller"),
    ("import inspect as i\nframe = i.currentframe()", 2, "reads the caller"),
    ("import inspect\nouter = inspect.stack()[1]", 2, "reads the caller"),
    ("def f():\n    try:\n        1 / 0\n    except Exception as e:\n"
     "        return e.__traceback__.tb_frame.f_back", 5, "reads the caller"),
    ("import gc\nobjs = gc.get_objects()", 2, "reads the caller"),
    ("from gc import get_referrers", 1, "reads the caller"),
    ("import sys\nsys.setprofile(print)", 2, "sys.modules"),
]


def _with_cheat(source_nb: dict, cheat: str) -> tuple[dict, int, str, int]:
    """The full solution with ``cheat`` appended to the first answer cell; returns the
    notebook, the cell index, its grade_id and the line the cheat starts on."""
    nb = copy.deepcopy(source_nb)
    index, cell = next((i, c) for i, c in enumerate(nb["cells"])
                       if c["cell_type"] == "code" and _meta(c).get("solution"))
    base = _source(cell).rstrip("\n")
    cell["source"] = base + "\n" + cheat + "\n"
    return nb, index, _meta(cell)["grade_id"], base.count("\n") + 2


@pytest.mark.parametrize("cheat,line,rule", CHEATS, ids=[f"{r}:{c[:30]}" for c, _, r in CHEATS])
def test_audit_reports_each_cheat_where_it_is(cheat, line, rule, tmp_path):
    solution = _load(SOLUTIONS / A / f"{A}.ipynb")
    nb, index, grade_id, first = _with_cheat(solution, cheat)
    path = _write(nb, tmp_path / "mallory" / A / f"{A}.ipynb")
    findings = audit_notebook(path, RELEASED / A / f"{A}.ipynb", student="mallory")
    assert findings, f"{rule} not found"
    assert {(f.cell, f.grade_id) for f in findings} == {(index, grade_id)}
    wanted = first + line - 1
    hits = [f for f in findings if f.line == wanted and f.rule == rule]
    assert hits, f"want {rule!r} at line {wanted}, got {[(f.line, f.rule) for f in findings]}"
    assert hits[0].source == cheat.split("\n")[line - 1]
    assert "mallory" in str(hits[0]) and grade_id in str(hits[0])


def test_audit_cell_magics_are_read_as_what_they_run():
    modules = imported_names(["import numpy as np"])
    assert scan_cell("%%capture\nnp.isclose = max", modules) == [
        (2, "patches a module", "np.isclose = max")]
    assert scan_cell("%%bash\ncat ../../solutions/a.ipynb", modules)[0][:2] == (2, "file outside")
    assert scan_cell("%%writefile ../x.py\nprint(1)", modules)[0][:2] == (1, "file outside")
    assert scan_cell("%%html\n<b>a .. b</b>", modules) == []
    assert scan_cell("%timeit np.ones(3)\nx = f'{1:.2f} .. {2:.2f}'", modules) == []


def test_audit_reports_edited_deleted_and_repointed_test_cells(tmp_path):
    released_path = RELEASED / A / f"{A}.ipynb"
    nb = _load(SOLUTIONS / A / f"{A}.ipynb")
    tests = [c for c in nb["cells"] if _meta(c).get("grade") and c["cell_type"] == "code"]
    assert len(tests) >= 3
    tests[0]["source"] = _source(tests[0]).replace("check_", "print  # ", 1)
    tests[1]["metadata"]["nbgrader"]["points"] = 100
    nb["cells"].remove(tests[2])
    path = _write(nb, tmp_path / "eve" / A / f"{A}.ipynb")
    found = {(f.grade_id, f.rule) for f in audit_notebook(path, released_path, "eve")}
    assert found == {(_meta(tests[0])["grade_id"], "test cell edited"),
                     (_meta(tests[1])["grade_id"], "points edited"),
                     (_meta(tests[2])["grade_id"], "test cell missing")}


def test_audit_command_lists_only_the_cheaters(tmp_path):
    solution = _load(SOLUTIONS / A / f"{A}.ipynb")
    submitted = tmp_path / "submitted"
    _write(solution, submitted / "honest" / A / f"{A}.ipynb")
    _write(_load(RELEASED / A / f"{A}.ipynb"), submitted / "blank" / A / f"{A}.ipynb")
    cheat, line, rule = CHEATS[0]
    _write(_with_cheat(solution, cheat)[0], submitted / "mallory" / A / f"{A}.ipynb")
    cmd = [sys.executable, "-m", "tools.course", "audit", A, "--submitted", str(submitted)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "mallory" in proc.stdout and rule in proc.stdout and "np.isclose" in proc.stdout
    assert "honest" not in proc.stdout and "blank" not in proc.stdout
    assert proc.stdout.strip().endswith("1 finding(s) in 1 submission(s): mallory")
    (submitted / "mallory").rename(tmp_path / "gone")
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0 and "0 finding(s)" in proc.stdout


# ------------------------------------------------------------------------- the feedback
# IPython 9's traceback of a failing hidden assert, as nbgrader stores it (ANSI colours).
TRACEBACK = (
    "\x1b[36mCell\x1b[39m\x1b[36m \x1b[39m\x1b[32mIn[2]\x1b[39m\x1b[32m, line 5\x1b[39m\n"
    "\x1b[32m      1\x1b[39m a = \x1b[32m1\x1b[39m\n"
    "\x1b[32m      2\x1b[39m \x1b[38;5;28;01massert\x1b[39;00m f(\x1b[32m1\x1b[39m) == 1\n"
    "\x1b[32m      3\x1b[39m \x1b[38;5;66;03m### BEGIN HIDDEN TESTS\x1b[39;00m\n"
    "\x1b[32m      4\x1b[39m \x1b[38;5;28;01mfor\x1b[39;00m t \x1b[38;5;28;01min\x1b[39;00m "
    "range(\x1b[32m3\x1b[39m):\n"
    "\x1b[32m----> \x1b[39m\x1b[32m5\x1b[39m     \x1b[38;5;28;01massert\x1b[39;00m f(t) == t, "
    "\x1b[33mf'hidden case {t}'\x1b[39m\n"
    "\x1b[32m      6\x1b[39m \x1b[38;5;66;03m### END HIDDEN TESTS\x1b[39;00m\n")


def test_scrub_traceback_keeps_the_visible_lines_and_marks_the_failing_hidden_one():
    hidden = {"### BEGIN HIDDEN TESTS", "for t in range(3):",
              "assert f(t) == t, f'hidden case {t}'", "### END HIDDEN TESTS"}
    out = scrub_traceback(TRACEBACK, hidden, "(hidden)").split("\n")
    text = [line for line in out if "range(" in line or "hidden case" in line]
    assert not text, text
    assert "a = " in out[1] and "assert" in out[2]  # visible context stays, colours too
    assert out[3:] == ["----> (hidden)", ""]  # one note for the run of 4 lines, failing


def _toy_course(root: Path) -> Path:
    """A course (the real config and plugins) with one toy assignment: one answer, one test
    cell with visible and hidden tests, one written answer."""
    course = root / "course"
    (course / "tools").mkdir(parents=True)
    (course / "nbgrader_config.py").write_text((ROOT / "nbgrader_config.py").read_text())
    for module in COURSE_PLUGINS:
        (course / "tools" / module).write_text((ROOT / "tools" / module).read_text())
    meta = {"grade": False, "locked": False, "solution": False, "task": False,
            "schema_version": 3}
    v4 = nbformat.v4
    nb = v4.new_notebook(metadata={"kernelspec": {"name": "python3", "language": "python",
                                                  "display_name": "Python 3"}})
    nb.cells = [
        v4.new_code_cell("import math"),
        v4.new_code_cell("def double(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n"
                         "    ### END SOLUTION",
                         metadata={"nbgrader": {**meta, "solution": True, "grade_id": "double"}}),
        v4.new_code_cell(
            "assert double(1) == 2, 'double(1) should be 2'\n### BEGIN HIDDEN TESTS\n"
            "for secret_value in (3, 7):\n"
            "    assert double(secret_value) == 2 * secret_value, "
            "f'double({secret_value}) is wrong'\n"
            "### END HIDDEN TESTS",
            metadata={"nbgrader": {**meta, "grade": True, "locked": True, "points": 2,
                                   "grade_id": "double_tests"}}),
        v4.new_markdown_cell("YOUR ANSWER HERE", metadata={"nbgrader": {
            **meta, "grade": True, "solution": True, "points": 1, "grade_id": "why"}}),
    ]
    nbformat.write(nb, _mkparent(course / "solutions" / "toy" / "toy.ipynb"))
    return course


def _mkparent(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _answer(course: Path, student: str, answer: str | None, test: str | None = None,
            written: str | None = "Because doubling is linear.") -> None:
    nb = nbformat.read(course / "notebooks" / "toy" / "toy.ipynb", as_version=4)
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id == "double" and answer is not None:
            cell.source = answer
        if grade_id == "why" and written is not None:
            cell.source = written
        if grade_id == "double_tests" and test is not None:
            cell.source = test
    nbformat.write(nb, _mkparent(course / "submitted" / student / "toy" / "toy.ipynb"))


def _csv(path: Path) -> dict[str, dict[str, str]]:
    with path.open() as fh:
        return {row["student_id"]: row for row in csv.DictReader(fh)}


def test_feedback_hides_hidden_tests_and_export_flags_ungraded_answers(tmp_path):
    """A round trip of the toy: the feedback of a wrong answer that only the hidden tests
    catch names the failure without any hidden line; a real edit to a test cell is the only
    autograde warning; the CSV says which scores wait for a written answer's grade."""
    course = _toy_course(tmp_path)
    nbgrader(course, "generate_assignment", "toy", "--force")
    _answer(course, "right", "def double(x):\n    return 2 * x")
    _answer(course, "wrong", "def double(x):\n    return 2 if x == 1 else x")  # hidden fail
    _answer(course, "tamper", "def double(x):\n    return x", test="pass", written=None)
    log = nbgrader(course, "autograde", "toy")
    log = log.stdout + log.stderr
    assert "Attribute 'checksum'" not in log  # stock nbgrader warned for every test cell
    assert "Test cell double_tests was edited in tamper's submission" in log
    assert log.count("was edited") == 1
    nbgrader(course, "generate_feedback", "toy")

    secret = ["for secret_value in (3, 7):", "assert double(secret_value) == 2 * secret_value, "
              "f'double({secret_value}) is wrong'"]
    graded = (course / "autograded" / "wrong" / "toy" / "toy.ipynb").read_text()
    assert all(json.dumps(line)[1:-1] in graded for line in secret)  # the grader ran them
    for student in ("right", "wrong", "tamper"):
        page = (course / "feedback" / student / "toy" / "toy.html").read_text()
        text = html_text(page)
        leaked = [line for line in secret if line in text]
        assert not leaked and "secret_value" not in text, f"{student}'s feedback: {leaked}"
        assert "hidden tests (not shown)" in text
    wrong = html_text((course / "feedback" / "wrong" / "toy" / "toy.html").read_text())
    assert "AssertionError" in wrong and "double(3) is wrong" in wrong  # the failure, named
    assert "(a line of the hidden tests: not shown)" in wrong
    tamper = html_text((course / "feedback" / "tamper" / "toy" / "toy.html").read_text())
    assert "double(1) should be 2" in tamper  # graded by the restored visible test

    nbgrader(course, "export", "--to", str(tmp_path / "before.csv"))
    before = _csv(tmp_path / "before.csv")
    # tamper left the written answer as released: nbgrader scores that 0 by itself
    assert {s: before[s]["needs_manual_grade"] for s in before} == {
        "right": "True", "wrong": "True", "tamper": "False"}
    assert before["right"]["raw_score"] == "2.0" and before["wrong"]["raw_score"] == "0.0"
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        for student in ("right", "wrong"):
            grade_by_hand(gb, "why", "toy", "toy", student, 1.0)
    nbgrader(course, "export", "--to", str(tmp_path / "after.csv"))
    after = _csv(tmp_path / "after.csv")
    assert {s: after[s]["needs_manual_grade"] for s in after} == {
        "right": "False", "wrong": "False", "tamper": "False"}
    assert after["right"]["raw_score"] == "3.0" and after["right"]["max_score"] == "3.0"
    assert list(after["right"])[-1] == "needs_manual_grade"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_solutions_have_hidden_lines_worth_hiding(assignment):
    """The round trip's leak check (tests/test_course.py) is only as good as its list."""
    secret = secret_lines(SOLUTIONS / assignment / f"{assignment}.ipynb",
                          RELEASED / assignment / f"{assignment}.ipynb")
    assert len(secret) >= 5


def test_zip_collect_reads_blackboard_file_names_and_their_time():
    from nbgrader.utils import parse_utc
    from traitlets.config import PyFileConfigLoader

    from tools.grading import LmsFileNames

    config = PyFileConfigLoader("nbgrader_config.py", path=str(ROOT)).load_config()
    plugin = LmsFileNames(config=config)
    folder = "/course/downloaded/03_quantization/extracted/"
    info = plugin.collect(folder + "03_quantization_hoppergrace_attempt_2030-06-29-18-04-11_"
                                   "03_quantization.ipynb")
    assert info == {"student_id": "hoppergrace", "file_id": "03_quantization",
                    "timestamp": "2030-06-29 18:04:11"}
    assert str(parse_utc(info["timestamp"])) == "2030-06-29 18:04:11"
    assert plugin.collect(folder + "03_quantization.ipynb") is None  # no pattern: skipped
    assert plugin.collect(folder + "03_quantization_hoppergrace_attempt_2030-06-29-18-04-11_"
                                   "notes.txt") is None

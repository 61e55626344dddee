"""Run docs/instructors.md as written: a term of one assignment with three students.

    python -m tools.guide_check [--keep DIR] [--assignment A]

The guide's command blocks carry a comment naming who runs them,
``<!-- guide: instructor NAME -->``, ``<!-- guide: student NAME -->`` or
``<!-- guide: skip NAME (why) -->``. This runs the instructor's and students' blocks
verbatim (``bash -eo pipefail``) in a fresh copy of the repository (the files git has or
would add), with the course environment's tools on PATH as after ``source .venv/bin/activate``:

* the instructor in the copy, with a home of their own (``~/Downloads`` gets the LMS zip);
* students lovelaceada and turingalan, each with their own home, through the exchange
  (``$NBGRADER_EXCHANGE``, a temporary folder, for everyone); lovelaceada answers every
  exercise, turingalan leaves the last one; hoppergrace hands in through an LMS zip;
* between the blocks, what people do by hand: students fill in answers (the solutions'
  code and a written answer), the Formgrader's manual grading (through nbgrader's
  Gradebook, as its grade API does), reading ``grades.csv`` and the feedback.

One Unix user plays everyone: nbgrader takes a student's id from the OS user, so each
student's environment adds a config folder (``JUPYTER_CONFIG_PATH``) that sets
``CourseDirectory.student_id``, what a separate login would give (the copy's collect then
logs that root owns the submissions). It fails (AssertionError, naming the step) when a
block fails or a result is not what the guide promises.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "instructors.md"
ASSIGNMENT = "03_quantization"  # the guide's example; the fastest notebook to grade
EXCHANGE_STUDENTS = ("lovelaceada", "turingalan")
LMS_STUDENT = "hoppergrace"
LMS_TIME = "2030-06-29-18-04-11"  # before the guide's due date
LMS_FILE = f"{ASSIGNMENT}_{LMS_STUDENT}_attempt_{LMS_TIME}_{ASSIGNMENT}.ipynb"  # Blackboard
ANNOTATED = re.compile(r"<!-- guide: (?P<role>instructor|student|skip) (?P<name>[\w-]+)"
                       r"(?P<note>[^>]*?)\s*-->\s*\n```bash\n(?P<code>.*?)^```", re.S | re.M)
BASH_BLOCK = re.compile(r"^```bash\n", re.M)


@dataclass(frozen=True)
class Block:
    role: str
    name: str
    note: str
    code: str


def guide_blocks(text: str | None = None) -> dict[str, Block]:
    """The guide's annotated command blocks by name, in order."""
    text = GUIDE.read_text() if text is None else text
    blocks: dict[str, Block] = {}
    for m in ANNOTATED.finditer(text):
        if m["name"] in blocks:
            raise ValueError(f"two guide blocks named {m['name']!r}")
        blocks[m["name"]] = Block(m["role"], m["name"], m["note"].strip(), m["code"])
    return blocks


def unannotated_blocks(text: str | None = None) -> int:
    """How many ```bash blocks of the guide lack a ``<!-- guide: ... -->`` comment."""
    text = GUIDE.read_text() if text is None else text
    return len(BASH_BLOCK.findall(text)) - len(ANNOTATED.findall(text))


def course_files() -> list[str]:
    """What a fresh clone holds once the work tree is committed: git's tracked files and
    the untracked ones it would add."""
    out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                         cwd=ROOT, capture_output=True, check=True).stdout.decode()
    return [p for p in out.split("\0") if p and (ROOT / p).is_file()]


class Term:
    """One run of the guide in ``work``: the course copy, homes, the exchange."""

    def __init__(self, work: Path, assignment: str = ASSIGNMENT) -> None:
        self.work = work
        self.assignment = assignment
        self.course = work / "course"
        self.exchange = work / "exchange"
        self.blocks = guide_blocks()
        self.timings: list[tuple[str, float]] = []
        self.used: set[str] = set()
        for rel in course_files():
            (self.course / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, self.course / rel)

    # -- people ----------------------------------------------------------------------
    def home(self, who: str) -> Path:
        home = self.work / "home" / who
        home.mkdir(parents=True, exist_ok=True)
        return home

    def env(self, who: str, student: bool) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("JUPYTER", "NBGRADER", "VIRTUAL_ENV"))}
        venv_bin = str(Path(sys.executable).parent)
        env.update(HOME=str(self.home(who)), USER=who, LOGNAME=who,
                   NBGRADER_EXCHANGE=str(self.exchange), PYTHONPATH=str(self.course),
                   PATH=os.pathsep.join([venv_bin, env.get("PATH", "")]),
                   VIRTUAL_ENV=str(Path(venv_bin).parent))
        if student:  # what logging in as this student would give nbgrader
            identity = self.work / "identity" / who
            identity.mkdir(parents=True, exist_ok=True)
            (identity / "nbgrader_config.py").write_text(
                f"c = get_config()  # noqa: F821\nc.CourseDirectory.student_id = {who!r}\n")
            env["JUPYTER_CONFIG_PATH"] = str(identity)
        return env

    def run(self, name: str, who: str = "instructor") -> str:
        """Run the guide's block ``name`` as ``who``; returns its output."""
        block = self.blocks[name]
        student = block.role == "student"
        if block.role == "skip" or student == (who == "instructor"):
            raise AssertionError(f"guide block {name!r} is for {block.role}, not {who}")
        self.used.add(name)
        code = block.code.replace(ASSIGNMENT, self.assignment)
        cwd = self.home(who) if student else self.course
        start = time.monotonic()
        proc = subprocess.run(["bash", "-eo", "pipefail", "-c", code], cwd=cwd,
                              env=self.env(who, student), capture_output=True, text=True)
        self.timings.append((f"{name} ({who})", time.monotonic() - start))
        if proc.returncode != 0:
            raise AssertionError(f"guide block {name!r} failed for {who} ({proc.returncode}):"
                                 f"\n{code}\n--- output ---\n{proc.stdout}\n{proc.stderr}")
        return proc.stdout + proc.stderr

    # -- what people do between the commands -------------------------------------------
    def answers(self) -> dict[str, str]:
        """grade_id -> the solution's source, for every answer cell (code and written)."""
        nb = json.loads((self.course / "solutions" / self.assignment
                         / f"{self.assignment}.ipynb").read_text())
        return {c["metadata"]["nbgrader"]["grade_id"]: "".join(c["source"])
                for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get("solution")}

    def work_on(self, notebook: Path, skip_last: bool = False) -> None:
        """A student's answers: the solution's, except the last exercise with ``skip_last``."""
        nb = json.loads(notebook.read_text())
        answers = self.answers()
        code = [gid for gid in answers if any(
            c["metadata"].get("nbgrader", {}).get("grade_id") == gid and c["cell_type"] == "code"
            for c in nb["cells"])]
        for cell in nb["cells"]:
            gid = cell["metadata"].get("nbgrader", {}).get("grade_id")
            if gid in answers and not (skip_last and gid == code[-1]):
                cell["source"] = answers[gid]
        notebook.write_text(json.dumps(nb, indent=1))

    def lms_download(self) -> None:
        """The LMS's zip of submissions in the instructor's ~/Downloads."""
        source = self.course / "notebooks" / self.assignment / f"{self.assignment}.ipynb"
        answer = self.work / "lms" / LMS_FILE.replace(ASSIGNMENT, self.assignment)
        answer.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, answer)
        self.work_on(answer)
        downloads = self.home("instructor") / "Downloads"
        downloads.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(downloads / "submissions.zip", "w") as zf:
            zf.write(answer, answer.name)

    def grade_written_answers(self, points: dict[str, float]) -> None:
        """Every written answer gets its full points, as a grader in the Formgrader."""
        from nbgrader.api import Gradebook

        from tools.grading import grade_by_hand

        with Gradebook(f"sqlite:///{self.course / 'gradebook.db'}") as gb:
            for student in (*EXCHANGE_STUDENTS, LMS_STUDENT):
                for grade_id, max_score in points.items():
                    grade_by_hand(gb, grade_id, self.assignment, self.assignment, student,
                                  max_score)

    def grades(self) -> dict[str, dict[str, str]]:
        with (self.course / "grades.csv").open() as fh:
            return {row["student_id"]: row for row in csv.DictReader(fh)
                    if row["assignment"] == self.assignment}

    def points(self) -> tuple[dict[str, float], dict[str, float], list[str]]:
        """(test cells' points, written answers' points, test cells after the last answer
        cell) of the assignment, from its source."""
        nb = json.loads((self.course / "solutions" / self.assignment
                         / f"{self.assignment}.ipynb").read_text())
        tests, written, after_last = {}, {}, []
        for cell in nb["cells"]:
            meta = cell["metadata"].get("nbgrader", {})
            if meta.get("solution") and cell["cell_type"] == "code":
                after_last = []
            if meta.get("grade") and cell["cell_type"] == "code":
                tests[meta["grade_id"]] = float(meta["points"])
                after_last.append(meta["grade_id"])
            elif meta.get("grade"):
                written[meta["grade_id"]] = float(meta["points"])
        return tests, written, after_last


def check(term: Term) -> None:
    """The guide, start to end, with its promises checked on the way."""
    a = term.assignment
    tests, written, last_tests = term.points()
    auto_max, manual_max = sum(tests.values()), sum(written.values())
    everyone = (*EXCHANGE_STUDENTS, LMS_STUDENT)

    term.run("setup")
    term.run("release")
    for student in EXCHANGE_STUDENTS:
        term.run("config", student)
        term.run("fetch", student)
        fetched = term.home(student) / a / f"{a}.ipynb"
        assert fetched.exists(), f"{student} fetched nothing"
        term.work_on(fetched, skip_last=student == "turingalan")
        if student == EXCHANGE_STUDENTS[0]:  # validating runs the notebook: once is enough
            out = term.run("validate", student)
            assert "Success! Your notebook passes all the tests." in out, out
        term.run("submit", student)
    term.run("collect")
    term.lms_download()
    term.run("zip-collect")
    for student in everyone:
        got = term.course / "submitted" / student / a / f"{a}.ipynb"
        assert got.exists(), f"no submission collected for {student}"
    term.run("audit")  # exits 1 on a finding: honest students give none
    graded = term.run("autograde")  # in parallel workers (tools/autograde.py)
    done = f"{len(everyone)} of {len(everyone)} submission(s) autograded"
    assert done in graded and "with 2 worker(s)" in graded, graded

    term.run("export")
    before = term.grades()
    assert set(before) == set(everyone), f"grades.csv students: {sorted(before)}"
    expected = {s: auto_max for s in everyone}
    expected["turingalan"] -= sum(tests[g] for g in last_tests)
    for student, row in before.items():
        assert row["needs_manual_grade"] == "True", (student, row)
        assert float(row["raw_score"]) == expected[student], (student, row, expected)
        assert float(row["max_score"]) == auto_max + manual_max, row
    assert before["lovelaceada"]["first_name"] == "Ada", "roster names missing"
    assert before["lovelaceada"]["duedate"].startswith("2030-06-30"), "no due date"
    assert before[LMS_STUDENT]["timestamp"].startswith("2030-06-29 18:04:11"), "LMS time"

    term.grade_written_answers(written)
    term.run("export")
    after = term.grades()
    for student, row in after.items():
        assert row["needs_manual_grade"] == "False", (student, row)
        assert float(row["raw_score"]) == expected[student] + manual_max, (student, row)

    released = term.run("feedback")
    assert f"return it yourself: feedback/{LMS_STUDENT}/{a}/" in released, released
    from tools.grading import html_text, secret_lines

    secret = secret_lines(term.course / "solutions" / a / f"{a}.ipynb",
                          term.course / "notebooks" / a / f"{a}.ipynb")
    pages = [term.course / "feedback" / s / a / f"{a}.html" for s in everyone]
    for student in EXCHANGE_STUDENTS:
        term.run("fetch-feedback", student)
        pages += list((term.home(student) / a / "feedback").glob(f"*/{a}.html"))
    assert len(pages) == 5, f"feedback pages: {pages}"
    for page in pages:
        text = html_text(page.read_text())
        leaked = [line for line in secret if line in text]
        assert not leaked, f"{page} shows hidden tests: {leaked[:3]}"
    unused = {n for n, b in term.blocks.items() if b.role != "skip"} - term.used
    assert not unused, f"guide blocks never run: {sorted(unused)}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="run in this (new) folder and keep it")
    parser.add_argument("--assignment", default=ASSIGNMENT)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        work = args.keep or Path(tmp)
        term = Term(work, args.assignment)
        start = time.monotonic()
        try:
            check(term)
        finally:
            for step, seconds in term.timings:
                print(f"{seconds:6.1f} s  {step}")
            print(f"{time.monotonic() - start:6.1f} s  in all ({work})")
    print("the instructor guide works")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

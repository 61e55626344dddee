"""The course's nbgrader plugins, configured in nbgrader_config.py (stock nbgrader 0.9.6).

``RestoreTestCells``  (autograde) nbgrader's OverwriteCells, but it warns only when a
    student really edited a test cell. Stock nbgrader logs "Attribute 'checksum' for cell
    ... has changed!" for *every* test cell, because the released cell lacks the hidden
    tests the checksum was computed with; real tampering then looks like nothing.
``HideHiddenTests``   (generate_feedback) the feedback shows which tests failed and their
    messages, never the hidden tests' source: hidden blocks are cut from the test cells and
    from the tracebacks IPython printed (they quote the failing line and its neighbours).
``CourseCsvExport``   (export) grades.csv with a ``needs_manual_grade`` column, so a
    submission whose written answer is not graded yet does not pass for a final score.
``LmsFileNames``      (zip_collect) nbgrader's file-name collector, reading the submission
    time as LMS file names write it (``2030-06-29-18-04-11``), which nbgrader's own parser
    misreads (as 05:00 the next day).
"""

from __future__ import annotations

import csv
import html
import json
import re
from pathlib import Path

from nbconvert.exporters.exporter import ResourcesDict
from nbformat.notebooknode import NotebookNode
from nbgrader.api import Gradebook, MissingEntry
from nbgrader.plugins import CsvExportPlugin, FileNameCollectorPlugin
from nbgrader.preprocessors import ClearHiddenTests, NbGraderPreprocessor, OverwriteCells
from traitlets import Unicode

BEGIN_HIDDEN = ClearHiddenTests.begin_test_delimeter.default_value  # "BEGIN HIDDEN TESTS"
END_HIDDEN = ClearHiddenTests.end_test_delimeter.default_value


def split_hidden(source: str) -> tuple[list[str], list[str]]:
    """``(visible lines, hidden lines)`` of a cell, cut exactly as nbgrader's ClearHiddenTests
    cuts them (the marker lines count as hidden)."""
    visible: list[str] = []
    hidden: list[str] = []
    inside = False
    for line in source.split("\n"):
        if BEGIN_HIDDEN in line:
            inside = True
            hidden.append(line)
        elif END_HIDDEN in line:
            inside = False
            hidden.append(line)
        else:
            (hidden if inside else visible).append(line)
    return visible, hidden


def visible_source(source: str) -> str:
    """What a student sees of a cell: ``source`` without its hidden tests."""
    return "\n".join(split_hidden(source)[0])


def normalized(source: str) -> str:
    """Source compared without trailing whitespace (editors strip it)."""
    return "\n".join(line.rstrip() for line in source.strip("\n").split("\n"))


class RestoreTestCells(OverwriteCells):
    """OverwriteCells (restores test cells from the gradebook) that reports real edits only.

    A submitted test cell that equals the released one, i.e. the instructor's cell without
    its hidden tests, is the expected case: it is restored silently (debug log). Any other
    difference is a student's edit: it is still graded with the instructor's version, and
    the warning says so by name.
    """

    def preprocess_cell(self, cell: NotebookNode, resources: ResourcesDict,
                        cell_index: int) -> tuple[NotebookNode, ResourcesDict]:
        self._as_released = False
        self._student = resources.get("nbgrader", {}).get("student", "?")
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id is not None:
            try:
                source = self.gradebook.find_source_cell(grade_id, self.notebook_id,
                                                         self.assignment_id)
            except MissingEntry:
                pass  # OverwriteCells reports it
            else:
                self._as_released = (normalized(cell.source)
                                     == normalized(visible_source(source.source)))
        return super().preprocess_cell(cell, resources, cell_index)

    def report_change(self, name: str, attr: str, old: object, new: object) -> None:
        if attr != "checksum":
            super().report_change(name, attr, old, new)
        elif self._as_released:
            self.log.debug("Test cell %s: hidden tests restored (expected)", name)
        else:
            self.log.warning(
                "Test cell %s was edited in %s's submission; it is graded with the "
                "instructor's version (`python -m tools.course audit` shows the edit)",
                name, self._student)


ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# IPython quotes source lines as "      3 code" (context) or "----> 3 code" (failing line).
GUTTER = re.compile(r"^(\s*(?:-+>\s*)?\d+) (.*)$")
CARETS = re.compile(r"^\s*[\^~]+\s*$")


def scrub_traceback(entry: str, hidden: set[str], note: str) -> str:
    """One traceback entry with every quoted line of ``hidden`` (stripped lines) replaced.

    A run of hidden lines becomes one ``note`` line, marked ``---->`` when the failing
    line was among them; IPython's ``^^^`` markers under a hidden line go with it.
    """
    out: list[str] = []
    run: list[bool] | None = None  # per hidden line in the current run: was it the arrow?
    for line in entry.split("\n"):
        text = ANSI.sub("", line)
        match = GUTTER.match(text)
        code = (match.group(2) if match else text).strip()
        if code and code in hidden:
            run = (run or []) + [bool(match and ">" in match.group(1))]
            continue
        if run is not None and CARETS.match(text):
            continue
        if run is not None:
            out.append(f"{'---->' if any(run) else '     '} {note}")
            run = None
        out.append(line)
    if run is not None:
        out.append(f"{'---->' if any(run) else '     '} {note}")
    return "\n".join(out)


class HideHiddenTests(NbGraderPreprocessor):
    """Feedback without the hidden tests' source; outputs (the failure messages) stay.

    Each hidden block of a code cell becomes one ``placeholder`` comment; error outputs keep
    their exception name and message, and their traceback loses the lines it quoted from the
    hidden blocks.
    """

    placeholder = Unicode(
        "# ... hidden tests (not shown) ...",
        help="Comment that stands in a test cell for each block of hidden tests.",
    ).tag(config=True)

    traceback_note = Unicode(
        "(a line of the hidden tests: not shown)",
        help="Text that stands in a traceback for the lines it quoted from hidden tests.",
    ).tag(config=True)

    def preprocess_cell(self, cell: NotebookNode, resources: ResourcesDict,
                        cell_index: int) -> tuple[NotebookNode, ResourcesDict]:
        if cell.cell_type != "code" or BEGIN_HIDDEN not in cell.source:
            return cell, resources
        lines, hidden, inside = [], set(), False
        for line in cell.source.split("\n"):
            if BEGIN_HIDDEN in line:
                inside = True
                indent = line[: len(line) - len(line.lstrip())]
                lines.append(indent + self.placeholder)
            if inside:
                if line.strip():
                    hidden.add(line.strip())
            else:
                lines.append(line)
            if END_HIDDEN in line:
                inside = False
        cell.source = "\n".join(lines)
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                output["traceback"] = [scrub_traceback(entry, hidden, self.traceback_note)
                                       for entry in output.get("traceback", [])]
        return cell, resources


def grade_by_hand(gradebook: Gradebook, grade_id: str, notebook: str, assignment: str,
                  student: str, score: float | None) -> None:
    """Set a cell's manual score as the formgrader's "save" does (its grade API handler):
    the score, and whether the cell still needs a grader."""
    grade = gradebook.find_grade(grade_id, notebook, assignment, student)
    grade.manual_score = score
    grade.needs_manual_grade = grade.manual_score is None and grade.auto_score is None
    gradebook.db.commit()


def secret_lines(solution: Path, released: Path) -> set[str]:
    """The stripped lines of ``solution``'s hidden tests that the released notebook does not
    show anyway: what feedback must never contain."""
    hidden: set[str] = set()
    for cell in json.loads(solution.read_text())["cells"]:
        hidden |= {line.strip() for line in split_hidden("".join(cell["source"]))[1]}
    public = {line.strip() for cell in json.loads(released.read_text())["cells"]
              for line in "".join(cell["source"]).split("\n")}
    return {line for line in hidden - public if line}


def html_text(page: str) -> str:
    """The text of an HTML page as a reader sees it (tags dropped, entities decoded): code
    highlighted token by token reads as the source again."""
    return html.unescape(re.sub(r"<[^>]+>", "", page))


class CourseCsvExport(CsvExportPlugin):
    """nbgrader's CSV export (same columns, in the same order) plus ``needs_manual_grade``.

    ``needs_manual_grade`` is ``True`` while any cell of the submission waits for a grader
    (a written answer not graded yet): its ``score`` is then not final. Values are quoted as
    CSV needs them (names with commas stay one field).
    """

    columns = ["assignment", "duedate", "timestamp", "student_id", "last_name", "first_name",
               "email", "raw_score", "late_submission_penalty", "score", "max_score",
               "needs_manual_grade"]

    def export(self, gradebook: Gradebook) -> None:
        dest = self.to or "grades.csv"
        students = {str(s) for s in self.student}
        assignments = {str(a) for a in self.assignment}
        self.log.info("Exporting grades to %s", dest)
        with open(dest, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=self.columns, lineterminator="\n")
            writer.writeheader()
            for assignment in gradebook.assignments:
                if assignments and assignment.name not in assignments:
                    continue
                for student in gradebook.students:
                    if students and student.id not in students:
                        continue
                    writer.writerow(self._row(gradebook, assignment, student))

    @staticmethod
    def _row(gradebook: Gradebook, assignment: object, student: object) -> dict[str, object]:
        row = {"assignment": assignment.name, "duedate": assignment.duedate,
               "student_id": student.id, "last_name": student.last_name,
               "first_name": student.first_name, "email": student.email,
               "max_score": assignment.max_score}
        try:
            submission = gradebook.find_submission(assignment.name, student.id)
        except MissingEntry:  # nothing submitted: zero, and nothing to grade
            row.update(timestamp="", raw_score=0.0, late_submission_penalty=0.0, score=0.0,
                       needs_manual_grade=False)
        else:
            penalty = submission.late_submission_penalty or 0.0
            row.update(timestamp=submission.timestamp, raw_score=submission.score,
                       late_submission_penalty=penalty,
                       score=max(0.0, submission.score - penalty),
                       needs_manual_grade=bool(submission.needs_manual_grade))
        return {k: "" if v is None else v for k, v in row.items()}


class LmsFileNames(FileNameCollectorPlugin):
    """FileNameCollectorPlugin whose ``timestamp`` group may be ``YYYY-MM-DD-HH-MM-SS``
    (Blackboard's, the example of nbgrader's documentation); it is read as that time, UTC."""

    def collect(self, submitted_file: str) -> dict | None:
        info = super().collect(submitted_file)
        stamp = (info or {}).get("timestamp")
        if stamp and re.fullmatch(r"\d{4}(-\d\d){5}", stamp):
            date, clock = stamp[:10], stamp[11:].replace("-", ":")
            info["timestamp"] = f"{date} {clock}"
        return info

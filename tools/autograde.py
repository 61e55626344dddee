"""Autograde a class in parallel: stock ``nbgrader autograde``, one submission per process.

    python -m tools.autograde ASSIGNMENT [--jobs N] [--student GLOB] [--force] [-- NBGRADER_ARGS]
    make autograde ASSIGNMENT=03_quantization JOBS=8        # the same, from the course root

``nbgrader autograde ASSIGNMENT`` grades the submissions one after the other (25-90 s each on
2 cores: a class of 150 takes hours per assignment). This runs the same command, in the
course folder, as ``JOBS`` workers that each take the next student from one queue and run
``nbgrader autograde ASSIGNMENT --CourseDirectory.student_id=STUDENT`` against a gradebook of
their own: a copy of the course's SQLite gradebook, so two workers never write one database.
When a student is done, the main process copies that student's rows from the worker's
gradebook into the course's (nbgrader's Gradebook API): the student, the submission's time
and extension, and per notebook the flag, the late penalty, every grade (auto, manual and
extra-credit score, needs_manual_grade) and every comment (auto and manual). The worker's
copy started equal to the course's gradebook and only that student's rows changed, so
afterwards the course's rows of that student are what a serial run leaves; nothing of
nbgrader's grading is reimplemented. Ids (random uuids) and the order rows were written in
differ from a serial run; nothing else does (``gradebook_state`` is that comparison, and
tests/test_autograde.py makes it against serial ``nbgrader autograde``). The autograded
notebooks land in ``autograded/`` as usual.

Every submission runs in its own kernel with the course config's cell timeout, as serially.
A submission nbgrader cannot grade (its kernel dies) is reported with nbgrader's log and
the exit status is 1, as nbgrader's. Arguments after ``--`` go to every ``nbgrader
autograde`` (e.g. ``--Execute.timeout=60``); the course folder, its gradebook and the
students are this command's (``--student``, the config's ``student_id_exclude``). Each
kernel gets ``OMP_NUM_THREADS`` = usable cores / JOBS unless it is set: JOBS kernels with a
thread per core each would oversubscribe the cores.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import os
import queue
import re
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from accel_lib.runtime import usable_cpus

STUDENT_FIELDS = ("first_name", "last_name", "email", "lms_user_id")
GRADE_FIELDS = ("auto_score", "manual_score", "extra_credit", "needs_manual_grade")
COMMENT_FIELDS = ("auto_comment", "manual_comment")


# ------------------------------------------------------------------------- the gradebook
def read_student(gb: object, assignment: str, student: str) -> dict | None:
    """Everything ``nbgrader autograde`` writes for ``student``'s submission of
    ``assignment``, by name (no database ids): ``None`` when the student is unknown."""
    from nbgrader.api import MissingEntry

    try:
        row = gb.find_student(student)
    except MissingEntry:
        return None
    state: dict = {"student": {f: getattr(row, f) for f in STUDENT_FIELDS}, "submission": None}
    try:
        submission = gb.find_submission(assignment, student)
    except MissingEntry:
        return state
    notebooks = {}
    for nb in submission.notebooks:
        notebooks[nb.name] = {
            "flagged": nb.flagged,
            "late_submission_penalty": nb.late_submission_penalty,
            "grades": {g.cell.name: {f: getattr(g, f) for f in GRADE_FIELDS} for g in nb.grades},
            "comments": {c.cell.name: {f: getattr(c, f) for f in COMMENT_FIELDS}
                         for c in nb.comments},
        }
    state["submission"] = {"timestamp": submission.timestamp, "extension": submission.extension,
                           "notebooks": notebooks}
    return state


def write_student(gb: object, assignment: str, student: str, state: dict | None) -> None:
    """Make ``student``'s rows for ``assignment`` in ``gb`` equal ``state`` (what
    ``read_student`` read from a worker's gradebook)."""
    if state is None:  # the worker's copy never had the student: neither has this one
        return
    with warnings.catch_warnings():
        # nbgrader's add_submission builds its rows in a way SQLAlchemy 2 warns about ("not
        # in session ... will not proceed"); nbgrader's own autograde gets the same warning,
        # and the rows are written all the same (tests/test_autograde.py compares them)
        warnings.filterwarnings("ignore", message=".*not in session.*")
        _write_student(gb, assignment, student, state)


def _write_student(gb: object, assignment: str, student: str, state: dict) -> None:
    from nbgrader.api import MissingEntry

    gb.update_or_create_student(student, **state["student"])
    wanted = state["submission"]
    if wanted is None:
        with contextlib.suppress(MissingEntry):
            gb.remove_submission(assignment, student)
        return
    submission = gb.update_or_create_submission(assignment, student)
    submission.timestamp = wanted["timestamp"]
    submission.extension = wanted["extension"]
    for nb in submission.notebooks:
        source = wanted["notebooks"][nb.name]
        nb.flagged = source["flagged"]
        nb.late_submission_penalty = source["late_submission_penalty"]
        for grade in nb.grades:
            for field, value in source["grades"][grade.cell.name].items():
                setattr(grade, field, value)
        for comment in nb.comments:
            for field, value in source["comments"][comment.cell.name].items():
                setattr(comment, field, value)
    gb.db.commit()


def gradebook_state(db_url: str, assignment: str) -> dict[str, dict | None]:
    """Every student's rows for ``assignment`` (``read_student``), by student id: what a
    serial and a parallel autograde must leave alike."""
    from nbgrader.api import Gradebook

    with Gradebook(db_url) as gb:
        return {s.id: read_student(gb, assignment, s.id) for s in gb.students}


# ---------------------------------------------------------------------------- the course
@dataclass(frozen=True)
class Course:
    """What nbgrader's config, read in the folder ``here``, says about the course."""

    here: Path  # where nbgrader runs (and finds the config)
    root: Path  # CourseDirectory.root
    course_id: str
    db_path: Path
    students: tuple[str, ...]  # with a submission of the assignment, in nbgrader's order


def load_course(root: Path, assignment: str, student: str = "*") -> Course:
    """The course in ``root`` (nbgrader_config.py there and on Jupyter's config path, read
    as nbgrader reads it) and the students whose ``assignment`` is in ``submitted/``."""
    from nbgrader.apps import NbGrader
    from nbgrader.coursedir import CourseDirectory

    cwd = os.getcwd()
    os.chdir(root)
    try:
        app = NbGrader()
        app.load_config_file()
        config = app.config
        NbGrader.clear_instance()
    finally:
        os.chdir(cwd)
    if "root" not in config.CourseDirectory:  # nbgrader's default: where it runs
        config.CourseDirectory.root = str(Path(root).resolve())
    coursedir = CourseDirectory(config=config)
    coursedir.root = str(Path(root, coursedir.root).resolve())
    match = re.fullmatch(r"sqlite:///(.+)", coursedir.db_url)
    if not match:
        raise SystemExit(f"parallel autograde needs a SQLite gradebook, not {coursedir.db_url}")
    db_path = Path(root, match.group(1)).resolve()
    pattern = coursedir.format_path(coursedir.submitted_directory, student, assignment)
    regexp = coursedir.format_path(coursedir.submitted_directory, "(?P<student_id>.*)",
                                   re.escape(assignment), escape=True)
    excluded = {s for s in coursedir.student_id_exclude.split(",") if s}
    found = [m["student_id"] for path in sorted(glob.glob(pattern))
             if os.path.isdir(path) and (m := re.fullmatch(regexp, path))]
    return Course(Path(root).resolve(), Path(coursedir.root), coursedir.course_id, db_path,
                  tuple(s for s in found if s not in excluded))


def copy_database(source: Path, dest: Path) -> None:
    """A consistent copy of a SQLite database (SQLite's backup, safe while it is open)."""
    with contextlib.closing(sqlite3.connect(source)) as src, \
            contextlib.closing(sqlite3.connect(dest)) as dst:
        src.backup(dst)


# ---------------------------------------------------------------------------- the run
@dataclass(frozen=True)
class Result:
    student: str
    returncode: int
    seconds: float
    output: str
    state: dict | None


class Workers:
    """``jobs`` threads, each running one ``nbgrader autograde`` subprocess at a time against
    its own copy of the gradebook; results come back through ``results``."""

    def __init__(self, course: Course, assignment: str, jobs: int, nbgrader_args: list[str],
                 workdir: Path) -> None:
        self.course, self.assignment, self.args = course, assignment, nbgrader_args
        self.todo: queue.Queue[str] = queue.Queue()
        for student in course.students:
            self.todo.put(student)
        self.results: queue.Queue[Result] = queue.Queue()
        self.stop = threading.Event()
        self.running: dict[int, subprocess.Popen] = {}
        self.env = {**os.environ, "PATH": os.pathsep.join([str(Path(sys.executable).parent),
                                                           os.environ.get("PATH", "")])}
        self.env.setdefault("OMP_NUM_THREADS", str(max(1, usable_cpus() // jobs)))
        self.threads = []
        for k in range(jobs):
            db = workdir / f"worker{k}.db"
            copy_database(course.db_path, db)
            self.threads.append(threading.Thread(target=self._work, args=(k, db), daemon=True))

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def _work(self, k: int, db: Path) -> None:
        from nbgrader.api import Gradebook

        url = f"sqlite:///{db}"
        while not self.stop.is_set():
            try:
                student = self.todo.get_nowait()
            except queue.Empty:
                return
            cmd = [sys.executable, "-m", "nbgrader", "autograde", self.assignment,
                   f"--CourseDirectory.student_id={glob.escape(student)}",
                   f"--CourseDirectory.db_url={url}", *self.args]
            start = time.monotonic()
            proc = subprocess.Popen(cmd, cwd=self.course.here, env=self.env, text=True,
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            self.running[k] = proc
            output, _ = proc.communicate()
            self.running.pop(k, None)
            seconds = time.monotonic() - start
            state = None
            if not self.stop.is_set():
                with Gradebook(url, self.course.course_id) as gb:
                    state = read_student(gb, self.assignment, student)
            self.results.put(Result(student, proc.returncode, seconds, output, state))

    def terminate(self) -> None:
        self.stop.set()
        for proc in list(self.running.values()):
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
        for thread in self.threads:
            thread.join(timeout=30)


def autograde(root: Path, assignment: str, jobs: int, student: str = "*", force: bool = False,
              nbgrader_args: tuple[str, ...] = (), log: object = print) -> list[Result]:
    """Autograde ``assignment``'s submissions in ``root`` with ``jobs`` workers, merging each
    student into the course's gradebook as it finishes; returns the results in that order."""
    from nbgrader.api import Gradebook, MissingEntry

    if jobs < 1:
        raise SystemExit(f"--jobs must be at least 1, got {jobs}")
    if any("CourseDirectory." in a for a in nbgrader_args):
        raise SystemExit("CourseDirectory options belong in nbgrader_config.py (or --student)")
    course = load_course(root, assignment, student)
    if not course.db_path.exists():
        raise SystemExit(f"no gradebook at {course.db_path}: release {assignment} first "
                         f"(python -m tools.course release {assignment})")
    url = f"sqlite:///{course.db_path}"
    with Gradebook(url, course.course_id) as gb:
        try:
            gb.find_assignment(assignment)
        except MissingEntry:
            raise SystemExit(f"No assignment with ID '{assignment}' exists in the database "
                             f"(python -m tools.course release {assignment})") from None
    if not course.students:
        log(f"no submissions of {assignment} in submitted/")
        return []
    jobs = min(jobs, len(course.students))
    args = [*(["--force"] if force else []), *nbgrader_args]
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="autograde-") as tmp:
        workers = Workers(course, assignment, jobs, args, Path(tmp))
        log(f"autograding {len(course.students)} submission(s) of {assignment} with {jobs} "
            f"worker(s), OMP_NUM_THREADS={workers.env['OMP_NUM_THREADS']}")
        workers.start()
        try:
            with Gradebook(url, course.course_id) as gb:
                while len(results) < len(course.students):
                    result = workers.results.get()
                    write_student(gb, assignment, result.student, result.state)
                    results.append(result)
                    status = "ok" if result.returncode == 0 else "FAILED"
                    log(f"[{len(results):>{len(str(len(course.students)))}}/"
                        f"{len(course.students)}] {result.student}: {status} "
                        f"({result.seconds:.1f} s)")
        except BaseException:
            workers.terminate()
            raise
    return results


def report(results: list[Result], seconds: float, log: object = print) -> int:
    """Failures with nbgrader's output, one summary line; the exit status (1 on a failure)."""
    failed = [r for r in results if r.returncode != 0]
    for r in failed:
        log(f"\n--- nbgrader autograde for {r.student} failed ({r.returncode}) ---\n{r.output}")
    per = sum(r.seconds for r in results) / len(results) if results else 0.0
    log(f"{len(results) - len(failed)} of {len(results)} submission(s) autograded in "
        f"{seconds:.1f} s ({per:.1f} s each in a worker)"
        + (f"; failed: {', '.join(r.student for r in failed)}" if failed else ""))
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in argv:
        at = argv.index("--")
        argv, extra = argv[:at], argv[at + 1:]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("assignment")
    parser.add_argument("--jobs", "-j", type=int, default=usable_cpus(),
                        help="worker processes (default: the usable cores)")
    parser.add_argument("--student", default="*",
                        help="only these students (a glob, as --CourseDirectory.student_id)")
    parser.add_argument("--force", action="store_true",
                        help="autograde again submissions already in autograded/")
    parser.add_argument("--course", type=Path, default=Path.cwd(),
                        help="the course folder (default: the current one)")
    args = parser.parse_args(argv)
    start = time.monotonic()
    results = autograde(args.course, args.assignment, args.jobs, args.student, args.force,
                        tuple(extra))
    return report(results, time.monotonic() - start)


if __name__ == "__main__":
    raise SystemExit(main())

"""Course maintenance with stock nbgrader: release notebooks and run grading round trips.

    python -m tools.course release [A ...]    # regenerate notebooks/ from solutions/
    python -m tools.course check              # fail if notebooks/ is out of date
    python -m tools.course audit A            # list suspicious code in submitted/*/A
    python -m tools.course release-feedback A # nbgrader release_feedback, exchange ones only

``release`` runs ``nbgrader generate_assignment`` in the repository itself, so the course's
gradebook (gradebook.db) knows each assignment, its notebooks and its test cells, as
``nbgrader autograde`` needs. Checks and round trips run nbgrader in a scratch copy of the
course, so the repo root never collects a gradebook or submissions from them.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = ROOT / "solutions"
RELEASED = ROOT / "notebooks"

# What every solution notebook may take on a 2-core CPU (COURSE.md), and Binder's memory
# limit: the test suite fails a notebook over the time, the benchmarks record both.
NOTEBOOK_BUDGET_S = 120.0
NOTEBOOK_BUDGET_MB = 2048.0
# The modules of tools/ that nbgrader_config.py loads: a course folder needs these beside it.
COURSE_PLUGINS = ("__init__.py", "grading.py", "kernel_client.py")


def assignments() -> list[str]:
    """Every assignment: one folder per notebook under solutions/."""
    return sorted(p.name for p in SOLUTIONS.iterdir() if p.is_dir() and not p.name.startswith("."))


def nbgrader(course: Path, *args: str) -> subprocess.CompletedProcess:
    """Run ``nbgrader ARGS`` in ``course`` (raises with nbgrader's output on failure)."""
    cmd = [sys.executable, "-m", "nbgrader", *args]
    # nbgrader calls `alembic` and starts kernels by name: the environment's tools come first
    env = {**os.environ, "PATH": os.pathsep.join([str(Path(sys.executable).parent),
                                                  os.environ.get("PATH", "")])}
    proc = subprocess.run(cmd, cwd=course, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n"
                           f"{proc.stderr}")
    return proc


def scratch_course(workdir: Path, assignment: str) -> Path:
    """A copy of the course config (and the plugins it loads from tools/) and one
    assignment's source, ready for nbgrader."""
    course = workdir / "course"
    course.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "nbgrader_config.py", course)
    (course / "tools").mkdir(exist_ok=True)
    for module in COURSE_PLUGINS:
        shutil.copy(ROOT / "tools" / module, course / "tools")
    shutil.copytree(SOLUTIONS / assignment, course / "solutions" / assignment,
                    ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    return course


def generate(course: Path, assignment: str) -> Path:
    """``nbgrader generate_assignment``; returns the released assignment folder."""
    nbgrader(course, "generate_assignment", assignment, "--force")
    return course / "notebooks" / assignment


def submit(course: Path, student: str, assignment: str, source: Path | dict) -> Path:
    """Put a submission where ``nbgrader autograde`` looks for it; returns its notebook.

    ``source`` is a folder (copied whole: a release, a solution) or a notebook (a dict),
    written next to the data files of the assignment's solution folder.
    """
    dest = course / "submitted" / student / assignment
    notebook = dest / f"{assignment}.ipynb"
    if isinstance(source, Path):
        shutil.copytree(source, dest, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
        return notebook
    dest.mkdir(parents=True)
    for extra in (SOLUTIONS / assignment).iterdir():
        if extra.is_file() and extra.suffix != ".ipynb":
            shutil.copy(extra, dest)
    notebook.write_text(json.dumps(source))
    return notebook


def _canonical(path: Path) -> str:
    if path.suffix == ".ipynb":
        return json.dumps(json.loads(path.read_text()), sort_keys=True, indent=1)
    return path.read_text()


def release_diff(assignment: str, released: Path, expected: Path) -> list[str]:
    """Files that differ between a fresh release (``expected``) and ``released``."""
    problems = []
    new = {p.relative_to(expected) for p in expected.rglob("*") if p.is_file()}
    old = {p.relative_to(released) for p in released.rglob("*") if p.is_file()} \
        if released.exists() else set()
    for rel in sorted(new - old):
        problems.append(f"{assignment}/{rel}: missing from notebooks/")
    for rel in sorted(old - new):
        problems.append(f"{assignment}/{rel}: in notebooks/ but not produced by nbgrader")
    for rel in sorted(new & old):
        if _canonical(expected / rel) != _canonical(released / rel):
            problems.append(f"{assignment}/{rel}: differs from what nbgrader generates")
    return problems


def release(check_only: bool = False, only: list[str] | None = None) -> list[str]:
    """Regenerate notebooks/ from solutions/ and register each assignment in the course's
    gradebook (or, with ``check_only``, list what is stale, touching nothing)."""
    problems: list[str] = []
    for assignment in only or assignments():
        if assignment not in assignments():
            raise SystemExit(f"no assignment {assignment!r} in solutions/")
        if check_only:
            with tempfile.TemporaryDirectory() as tmp:
                fresh = generate(scratch_course(Path(tmp), assignment), assignment)
                problems += release_diff(assignment, RELEASED / assignment, fresh)
        else:
            generate(ROOT, assignment)  # notebooks/<assignment> and gradebook.db
    if not check_only and not only:
        stale = [p for p in RELEASED.iterdir() if p.is_dir() and p.name not in assignments()]
        for p in stale:
            shutil.rmtree(p)
    return problems


def release_feedback(assignment: str, course: Path = ROOT) -> tuple[list[str], list[str]]:
    """``nbgrader release_feedback`` for the submissions that came through the exchange;
    returns (students released, students whose feedback goes back another way).

    nbgrader's own command stops at the first submission without the exchange's receipt
    (``submission_secret.txt``), e.g. one filed by ``zip_collect`` from an LMS.
    """
    folders = sorted((course / "feedback").glob(f"*/{assignment}"))
    exchange = [f.parent.name for f in folders if (f / "submission_secret.txt").exists()]
    other = [f.parent.name for f in folders if f.parent.name not in exchange]
    if exchange:
        nbgrader(course, "release_feedback", assignment,
                 f"--CourseDirectory.student_id_exclude={','.join(other)}")
    return exchange, other


@dataclass(frozen=True)
class Score:
    """Autograded points of one submission (written answers are graded by hand: not here)."""

    auto: float
    max_auto: float
    max_total: float


def autograded_scores(course: Path, assignment: str) -> dict[str, Score]:
    """Autograded score of every student's submission, read from the gradebook."""
    from nbgrader.api import Gradebook

    scores = {}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        for submission in gb.assignment_submissions(assignment):
            auto = max_auto = max_total = 0.0
            for nb in submission.notebooks:
                for grade in nb.grades:
                    max_total += grade.max_score
                    if grade.cell.cell_type == "code":  # autograded test cells
                        max_auto += grade.max_score
                        auto += grade.auto_score or 0.0
            scores[submission.student.id] = Score(auto, max_auto, max_total)
    return scores


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="action", required=True)
    rel = sub.add_parser("release", help="regenerate notebooks/ and register in gradebook.db")
    rel.add_argument("assignments", nargs="*", help="default: every assignment")
    sub.add_parser("check", help="fail if notebooks/ is out of date")
    fb = sub.add_parser("release-feedback", help="release_feedback for exchange submissions")
    fb.add_argument("assignment")
    aud = sub.add_parser("audit", help="list suspicious code in the submissions")
    aud.add_argument("assignment")
    aud.add_argument("--submitted", type=Path, default=ROOT / "submitted",
                     help="folder of <student>/<assignment>/ submissions (default: submitted/)")
    aud.add_argument("--released", type=Path, default=RELEASED,
                     help="folder of the released assignments (default: notebooks/)")
    args = parser.parse_args(argv)
    if args.action == "release-feedback":
        exchange, other = release_feedback(args.assignment)
        print(f"feedback released through the exchange: {', '.join(exchange) or 'none'}")
        for student in other:
            print(f"not through the exchange, return it yourself: "
                  f"feedback/{student}/{args.assignment}/")
        return 0
    if args.action == "audit":
        from tools.audit import audit_submissions, print_report

        findings = audit_submissions(args.assignment, args.submitted, args.released)
        print_report(findings)
        return 1 if findings else 0
    problems = release(check_only=args.action == "check",
                       only=getattr(args, "assignments", None))
    for line in problems:
        print(line)
    if args.action == "release":
        names = args.assignments or assignments()
        print(f"released {', '.join(names)} to {RELEASED.relative_to(ROOT)}/ "
              f"and registered in gradebook.db")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Grading: points that hostile submissions earn at autograde (the target is 0), and how
long autograding takes, per submission and with parallel workers (tools/autograde.py).

Each assignment's solution is rewritten into the submissions of ``tools.cheats`` and
autograded with stock nbgrader in one run; the baseline of every record is the
assignment's autograded maximum: what a cheat that works earns. Before the hidden tests
defended themselves, the same submissions scored: patched checkers 7/9 (00), 6/8 (02),
9/9 (03), 0/7 (04) and 2/6 (05), and answers calling the reference earned full marks.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from accel_lib.runtime import usable_cpus
from tools.cheats import grade
from tools.course import RELEASED, ROOT, SOLUTIONS, assignments, generate, scratch_course, submit

from .record import Record

# a handful of submissions per assignment, as a class hands them in: mostly answered
SUBMISSIONS = {"solved1": SOLUTIONS, "solved2": SOLUTIONS, "solved3": SOLUTIONS,
               "blank": RELEASED}
MACHINE = ("on a machine shared with other jobs while measured (their load makes it slower "
           "and noisier than an idle one)")

# record name -> (submission kind of tools.cheats, what it is)
CHEATS = {
    "cheat-points": ("checks", "garbage answers (each returns its input) with every checker "
                               "and helper of accel_lib.checks patched to a no-op"),
    "libs-cheat-points": ("libs", "answers returning an object equal to anything, with "
                                  "np.isclose/np.allclose/torch.allclose/torch.testing."
                                  "assert_close patched to true and Q/np/torch rebound to fakes"),
    "reference-points": ("reference", "correct answers that call the library's own "
                                      "implementation of each exercise (forbidden)"),
    "honest-points": ("honest", "the full solution with both cheat cells at the top: it must "
                                "keep full marks (target = baseline)"),
}


def _class(workdir: Path, assignment: str) -> Path:
    """A scratch course with ``assignment`` released and SUBMISSIONS handed in."""
    course = scratch_course(workdir, assignment)
    shutil.copy(ROOT / "tools" / "autograde.py", course / "tools")
    generate(course, assignment)
    for student, source in SUBMISSIONS.items():
        submit(course, student, assignment, source / assignment)
    return course


def _seconds(course: Path, *args: str) -> float:
    """Wall time of ``python ARGS`` in ``course``, every kernel on one thread
    (OMP_NUM_THREADS=1), so that serial and parallel differ only in the workers."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    start = time.perf_counter()
    subprocess.run([sys.executable, *args], cwd=course, env=env, check=True,
                   capture_output=True)
    return time.perf_counter() - start


def throughput_records(only: list[str] | None = None) -> list[Record]:
    """Serial ``nbgrader autograde`` of SUBMISSIONS per assignment (seconds per submission),
    and the same submissions with ``python -m tools.autograde --jobs 2``, side by side: each
    twice, in the order serial, parallel, parallel, serial, on fresh copies of the class, and
    the faster of the two kept (other jobs on the machine only ever slow a run down)."""
    out, serial_total, parallel_total = [], 0.0, 0.0
    n = len(SUBMISSIONS)
    serial_cmd = ("-m", "nbgrader", "autograde", "{}")
    parallel_cmd = ("-m", "tools.autograde", "{}", "--jobs", "2")
    chosen = only or assignments()
    for assignment in chosen:
        times: dict[tuple[str, ...], list[float]] = {serial_cmd: [], parallel_cmd: []}
        with tempfile.TemporaryDirectory() as tmp:
            pristine = _class(Path(tmp) / "class", assignment)
            for k, cmd in enumerate((serial_cmd, parallel_cmd, parallel_cmd, serial_cmd)):
                course = shutil.copytree(pristine, Path(tmp) / f"run{k}")
                times[cmd].append(_seconds(course, *(a.format(assignment) for a in cmd)))
        t_serial, t_parallel = min(times[serial_cmd]), min(times[parallel_cmd])
        serial_total += t_serial
        parallel_total += t_parallel
        out.append(Record(
            f"grading/seconds-per-submission/{assignment}", t_serial / n, "s", None,
            f"serial `nbgrader autograde` of {n} submissions (3 full solutions, 1 untouched "
            f"release), wall time / {n} (the faster of 2 runs), kernel starts included, one "
            f"thread per kernel, {MACHINE}"))
    out.append(Record(
        "grading/parallel-speedup-2-workers", serial_total / parallel_total, "x", 1.0,
        f"serial `nbgrader autograde` time / `python -m tools.autograde --jobs 2` time, the "
        f"same {n} submissions of each of the {len(chosen)} assignments, each the "
        f"faster of 2 runs side by side ({serial_total:.0f} s vs {parallel_total:.0f} s), one "
        f"thread per kernel in both (with torch's default threads the serial run was slower "
        f"still: its kernels oversubscribe a busy machine); {usable_cpus()} usable cores, "
        f"{MACHINE}: load average {os.getloadavg()[1]:.1f} at the end, so the second worker "
        f"had a free core only when that is below {usable_cpus() - 1}; each worker's submission "
        f"also pays nbgrader's start (~3 s); baseline = serial"))
    return out


def records() -> list[Record]:
    out = throughput_records()
    kinds = tuple(kind for kind, _ in CHEATS.values())
    for assignment in assignments():
        with tempfile.TemporaryDirectory() as tmp:
            scores, _ = grade(Path(tmp), assignment, kinds)
        for name, (kind, what) in CHEATS.items():
            score = scores[kind]
            out.append(Record(f"grading/{name}/{assignment}", score.auto, "pts", score.max_auto,
                              f"{what}; autograded points, baseline = the assignment's "
                              f"autograded maximum"))
    return out

"""Points that hostile submissions earn at autograde (the target is 0), per assignment.

Each assignment's solution is rewritten into the submissions of ``tools.cheats`` and
autograded with stock nbgrader in one run; the baseline of every record is the
assignment's autograded maximum: what a cheat that works earns. Before the hidden tests
defended themselves, the same submissions scored: patched checkers 7/9 (00), 6/8 (02),
9/9 (03), 0/7 (04) and 2/6 (05), and answers calling the reference earned full marks.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from tools.cheats import grade
from tools.course import assignments

from .record import Record

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


def records() -> list[Record]:
    out = []
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

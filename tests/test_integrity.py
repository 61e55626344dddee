"""Tests a submission cannot switch off (COURSE.md): cheats score 0 at autograde.

One nbgrader run per assignment grades three submissions (built by ``tools.cheats``):

* ``combined``: garbage answers that keep each function's signature, with every checker
  and helper of ``accel_lib.checks`` patched to a no-op, numpy's and torch's comparisons
  (``np.isclose``, ``torch.allclose``, ``torch.testing.assert_close``, ...) patched to
  "equal", and the notebook's ``Q``/``np``/``torch``/... rebound to fakes for each test;
* ``reference``: correct answers that merely call the library's own implementation;
* ``honest``: the full solution with the same cheat cells at the top.
"""

from __future__ import annotations

import pytest

from tools.cheats import grade, graded_errors
from tools.course import assignments


@pytest.mark.parametrize("assignment", assignments())
def test_cheats_score_nothing_and_honest_work_keeps_full_marks(assignment, tmp_path):
    kinds = ("combined", "reference", "honest")
    scores, course = grade(tmp_path, assignment, kinds)
    assert set(scores) == set(kinds), f"nbgrader graded only {sorted(scores)}"
    errors = {kind: graded_errors(course, kind, assignment) for kind in kinds}

    honest = scores["honest"]
    assert honest.max_auto > 0
    assert honest.auto == honest.max_auto, (
        f"the full solution in a patched kernel scored {honest.auto} of {honest.max_auto}: "
        f"the defence breaks honest work: {errors['honest']}")

    cheat = scores["combined"]
    assert cheat.auto == 0, (f"garbage answers with patched checkers, numpy, torch and globals "
                             f"scored {cheat.auto} of {cheat.max_auto}; the test cells that "
                             f"passed are those missing from {sorted(errors['combined'])}")

    reference = scores["reference"]
    assert reference.auto == 0, (f"answers that call accel_lib's own implementation scored "
                                 f"{reference.auto} of {reference.max_auto}")
    # They pass the visible tests and fail only where the grader forbids the reference,
    # with a message that tells the learner why.
    assert errors["reference"], "no test cell failed"
    for grade_id, error in errors["reference"].items():
        assert "write it yourself" in error, f"{grade_id} failed for another reason: {error}"

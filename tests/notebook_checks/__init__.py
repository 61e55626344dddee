"""Wrong answers a learner plausibly writes, and the claims a notebook prints, per notebook.

``tests/test_notebook_checks.py`` executes each solution notebook once, with a probe cell
after every exercise test cell that has mistakes listed here. The probe runs each wrong
answer in the learner's place and then:

* the test cell as the learner has it (hidden tests stripped, as ``nbgrader`` releases it):
  it must fail, with a message matching ``expect`` (it points to the mistake) and short
  (``MAX_MESSAGE``): what *Validate* accepts, the grader accepts, and the learner learns why;
* the whole test cell (visible and hidden): it must fail too, with a short message;

then puts the right answer back, so the rest of the notebook runs as usual. At the end the
notebook's ``CLAIMS`` code runs in the same kernel: assertions that every explanation the
notebook printed from a measurement agrees with the numbers it measured.

A module ``nbNN.py`` here belongs to the assignment whose name starts with ``NN_``. It
defines ``MISTAKES: list[Mistake]`` and ``CLAIMS: str`` (Python source, may be empty).
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass

# A failing check says which key, which index, expected vs got: a few lines, never a dump.
MAX_MESSAGE = 800


@dataclass(frozen=True)
class Mistake:
    """A wrong answer to the exercise whose answer cell has nbgrader id ``answer``.

    ``code`` replaces the answer cell; ``expect`` is a regular expression (searched,
    case-insensitive) that the visible tests' failure message must match.
    """

    answer: str
    name: str
    code: str
    expect: str

    def __post_init__(self) -> None:
        re.compile(self.expect)
        compile(self.code, f"<mistake {self.name}>", "exec")


def module_for(assignment: str):
    """The checks module of ``assignment`` (e.g. ``02_pruning`` -> ``nb02``), or None."""
    number = assignment.split("_", 1)[0]
    try:
        return importlib.import_module(f"{__name__}.nb{number}")
    except ModuleNotFoundError as err:
        if err.name != f"{__name__}.nb{number}":
            raise
        return None

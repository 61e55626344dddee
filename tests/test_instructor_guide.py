"""docs/instructors.md works as written: its command blocks are run, verbatim, for a term.

The run itself is tools/guide_check.py (``python -m tools.guide_check`` prints each step's
time); here it runs in a temporary folder, about two minutes on two cores.
"""

from __future__ import annotations

import re

from tools.course import ROOT
from tools.guide_check import GUIDE, Term, check, guide_blocks, unannotated_blocks


def test_every_command_block_of_the_guide_is_run_or_says_why():
    assert unannotated_blocks() == 0, "a ```bash block in the guide has no <!-- guide: --> note"
    blocks = guide_blocks()
    assert {b.role for b in blocks.values()} == {"instructor", "student", "skip"}
    for block in blocks.values():
        if block.role == "skip":
            assert re.fullmatch(r"\(.+\)", block.note), f"{block.name}: say why it is not run"


def test_students_write_the_distributions_nbgrader_config():
    code = guide_blocks()["config"].code
    heredoc = re.search(r"<<'EOF'\n(.*?)^EOF$", code, re.S | re.M)
    assert heredoc, code
    assert heredoc.group(1) == (ROOT / "tools" / "student" / "nbgrader_config.py").read_text()


def test_the_guide_names_only_what_exists():
    text = GUIDE.read_text()
    for module in set(re.findall(r"python -m (tools\.\w+)", text)):
        assert (ROOT / (module.replace(".", "/") + ".py")).is_file(), module
    targets = set(re.findall(r"^([\w-]+):", (ROOT / "Makefile").read_text(), flags=re.M))
    for target in set(re.findall(r"`make ([\w-]+)", text)):
        assert target in targets, f"make {target}"
    in_dist_only = {"binder/student_setup.sh"}  # tools/dist.py writes it there
    for path in set(re.findall(r"\b((?:docs|tools|binder)/[\w./-]+\.\w+)", text)) - in_dist_only:
        assert (ROOT / path).exists(), path
    assert "nbgrader formgrader" not in text.replace("no\n`nbgrader formgrader`", "")
    assert "View → Cell Toolbar" not in text.replace("classic Notebook's *View → Cell", "")


def test_the_instructor_guide_works(tmp_path):
    """Roster and due date, release, two students fetch/validate/submit through the exchange,
    one through an LMS zip, collect, zip_collect, audit, autograde, export (manual grading
    pending), grade the written answers, export, feedback: the guide's own commands."""
    term = Term(tmp_path)
    check(term)
    ran = {step.split(" (")[0] for step, _ in term.timings}
    assert ran == {n for n, b in guide_blocks().items() if b.role != "skip"}

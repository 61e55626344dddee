"""nbgrader configuration for the course: run stock nbgrader commands from the repo root.

    python -m tools.course release 00_measuring_speed         # solutions/ -> notebooks/ + gradebook
    nbgrader autograde 00_measuring_speed                     # submitted/ -> autograded/
    nbgrader generate_feedback 00_measuring_speed             # autograded/ -> feedback/

See docs/instructors.md for the whole release -> collect -> autograde -> feedback cycle.
"""

import os
import sys

c = get_config()  # noqa: F821 (provided by traitlets when nbgrader loads this file)

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:  # the course's nbgrader plugins live in tools/grading.py
    sys.path.insert(0, HERE)

from nbgrader.converters import Autograde, GenerateFeedback  # noqa: E402
from nbgrader.preprocessors import OverwriteCells  # noqa: E402

from tools.grading import (  # noqa: E402
    CourseCsvExport,
    HideHiddenTests,
    LmsFileNames,
    RestoreTestCells,
)

c.CourseDirectory.course_id = "accel-course"
c.CourseDirectory.root = HERE
c.CourseDirectory.source_directory = "solutions"  # instructor notebooks, full solutions
c.CourseDirectory.release_directory = "notebooks"  # what learners get (committed)
c.CourseDirectory.db_url = "sqlite:///" + os.path.join(HERE, "gradebook.db")
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", ".*"]

# The exchange (release/fetch/submit/collect): a folder the instructor and every student can
# write. $NBGRADER_EXCHANGE when set (on a JupyterHub: /srv/nbgrader/exchange, the students'
# config reads the same variable), else .exchange/ here, which needs no root.
c.Exchange.root = os.environ.get("NBGRADER_EXCHANGE") or os.path.join(HERE, ".exchange")

# A submission cannot stall the grader: every cell gets at most this many seconds, then
# the kernel is interrupted and the remaining cells still run (and fail their tests).
c.Execute.timeout = 180
c.Execute.interrupt_on_timeout = True
# ... and a submission is never made to wait out that timeout by a lost wake-up of the
# kernel client's sockets (tools/kernel_client.py: seen after ipywidgets explorers).
c.AsyncKernelManager.client_class = "tools.kernel_client.WakefulKernelClient"

# A learner who deletes a test cell gets it back at autograde (and loses its points
# honestly instead of skipping it); tests are always the instructor's versions.
c.OverwriteCells.add_missing_cells = True
# ... and nbgrader warns about a test cell only when the student edited it, not for every
# test cell whose hidden tests come back (stock nbgrader's "checksum has changed" noise).
c.Autograde.sanitize_preprocessors = [
    RestoreTestCells if p is OverwriteCells else p
    for p in Autograde.class_traits()["sanitize_preprocessors"].make_dynamic_default()]

# Feedback names the failed tests and their messages but never shows the hidden tests' code.
c.GenerateFeedback.preprocessors = [
    *GenerateFeedback.class_traits()["preprocessors"].make_dynamic_default(), HideHiddenTests]

# `nbgrader export` -> grades.csv, with a needs_manual_grade column (an ungraded written
# answer would otherwise pass for a final score).
c.ExportApp.plugin_class = CourseCsvExport

# `nbgrader zip_collect`: file names as Blackboard's "Download Assignment" zip has them (the
# example of nbgrader's documentation), <assignment>_<login>_attempt_<time>_<file name>,
# e.g. 03_quantization_hoppergrace_attempt_2030-06-29-18-04-11_03_quantization.ipynb: the
# login is the student id, the time (UTC) the submission's. For another LMS change the
# pattern (named groups student_id and file_id, timestamp if the names have one).
c.ZipCollectApp.collector_plugin = LmsFileNames
c.FileNameCollectorPlugin.named_regexp = (
    r".*_(?P<student_id>[^_/]+)_attempt_(?P<timestamp>\d{4}(?:-\d\d){5})_"
    r"(?P<file_id>[^/]+)\.ipynb$")

c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

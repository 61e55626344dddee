"""nbgrader configuration for the course: run stock nbgrader commands from the repo root.

    nbgrader generate_assignment 00_measuring_speed --force   # solutions/ -> notebooks/
    nbgrader autograde 00_measuring_speed                     # submitted/ -> autograded/
    nbgrader generate_feedback 00_measuring_speed             # autograded/ -> feedback/

See docs/instructors.md for the whole release -> collect -> autograde -> feedback cycle.
"""

import os

c = get_config()  # noqa: F821 (provided by traitlets when nbgrader loads this file)

HERE = os.path.dirname(os.path.abspath(__file__))

c.CourseDirectory.course_id = "accel-course"
c.CourseDirectory.root = HERE
c.CourseDirectory.source_directory = "solutions"  # instructor notebooks, full solutions
c.CourseDirectory.release_directory = "notebooks"  # what learners get (committed)
c.CourseDirectory.db_url = "sqlite:///" + os.path.join(HERE, "gradebook.db")
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", ".*"]

# The exchange (release/fetch/submit/collect) in a folder any user can write, not /srv.
c.Exchange.root = os.path.join(HERE, ".exchange")

# A submission cannot stall the grader: every cell gets at most this many seconds, then
# the kernel is interrupted and the remaining cells still run (and fail their tests).
c.Execute.timeout = 180
c.Execute.interrupt_on_timeout = True

# A learner who deletes a test cell gets it back at autograde (and loses its points
# honestly instead of skipping it); tests are always the instructor's versions.
c.OverwriteCells.add_missing_cells = True

c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

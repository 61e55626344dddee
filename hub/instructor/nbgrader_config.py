# The instructor's nbgrader on the course hub (Formgrader, and nbgrader in any folder): the
# course's own nbgrader_config.py, from this clone of the course. hub/jupyterhub_config.py
# puts this folder on the instructors' Jupyter config path.
import os

c = get_config()  # noqa: F821 (provided by traitlets when nbgrader loads this file)
COURSE = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if not os.path.isfile(os.path.join(COURSE, "nbgrader_config.py")):
    raise FileNotFoundError(f"no nbgrader_config.py in {COURSE}: hub/ belongs in the course")
load_subconfig("nbgrader_config.py", path=COURSE)  # noqa: F821 (provided by traitlets)

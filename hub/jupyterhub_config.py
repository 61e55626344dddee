"""JupyterHub for the course on one machine: every learner and the instructor log in with
their account on it, and JupyterHub starts each one's Jupyter server as that user
(LocalProcessSpawner, PAM login). docs/instructors.md ("A class on JupyterHub") sets it up:

    jupyterhub -f hub/jupyterhub_config.py          # as root, in the hub's environment

Students' servers run in the environment the hub runs in, which is the student
distribution's (``make env`` there: nbgrader's instructor tools are off, and it holds no
solutions: those stay in the instructors' homes and root's), with the distribution's
``nbgrader_config.py`` (course id and exchange) on their Jupyter config path: Assignments
(fetch, submit, fetch feedback) and Validate work, from their home folder. The instructors'
servers run in their own clone of the course repository (``~/accel-course``, ``make env``
there): Formgrader and the command line (``nbgrader``, ``make autograde``) with the course's
nbgrader_config.py, through ``hub/instructor/`` on their config path. Everyone's
``NBGRADER_EXCHANGE`` is the one shared exchange folder.

Settings come from the environment the hub starts in:

COURSE_INSTRUCTORS   comma-separated logins of the instructors (default: ``instructor``)
COURSE_STUDENTS      a roster CSV (docs/roster.example.csv's columns): only its ``id``s and the
                     instructors may log in; unset, every account of the machine may
COURSE_STUDENT_DIST  the student distribution the hub runs from (default ``/opt/accel-course``)
COURSE_DIR           the instructors' course clone, relative to their home (``accel-course``)
NBGRADER_EXCHANGE    the exchange, writable by all (default ``/srv/nbgrader/exchange``)

tests/test_hub.py starts this hub on localhost with a dummy login and users that need no
accounts (SimpleLocalProcessSpawner, homes in a temporary folder) and drives a term of a
toy assignment through it; hub/z2jh-values.yaml is the same course on Kubernetes.
"""

import csv
import os
from pathlib import Path

c = get_config()  # noqa: F821 (provided by traitlets when JupyterHub loads this file)

HERE = Path(__file__).resolve().parent
INSTRUCTORS = {n.strip() for n in os.environ.get("COURSE_INSTRUCTORS", "instructor").split(",")
               if n.strip()}
STUDENT_DIST = os.environ.get("COURSE_STUDENT_DIST", "/opt/accel-course")
COURSE_DIR = os.environ.get("COURSE_DIR", "accel-course")
EXCHANGE = os.environ.get("NBGRADER_EXCHANGE", "/srv/nbgrader/exchange")

c.JupyterHub.spawner_class = "jupyterhub.spawner.LocalProcessSpawner"
c.JupyterHub.authenticator_class = "jupyterhub.auth.PAMAuthenticator"
roster = os.environ.get("COURSE_STUDENTS")
if roster:
    with open(roster, newline="") as fh:
        c.Authenticator.allowed_users = {row["id"] for row in csv.DictReader(fh)} | INSTRUCTORS
else:
    c.Authenticator.allow_all = True  # every account on this machine is in the course

# configurable-http-proxy from `make hub-deps` (hub/node_modules), else the one on PATH
PROXY = HERE / "node_modules" / ".bin" / "configurable-http-proxy"
if PROXY.exists():
    c.ConfigurableHTTPProxy.command = [str(PROXY)]

c.Spawner.default_url = "/lab"
c.Spawner.environment = {"NBGRADER_EXCHANGE": EXCHANGE}


def home_of(spawner: object) -> Path:
    """The user's home: SimpleLocalProcessSpawner's home_dir, else the account's."""
    home = getattr(spawner, "home_dir", "")
    return Path(home or os.path.expanduser(f"~{spawner.user.name}"))


def course_role(spawner: object) -> None:
    """Instructors get their course clone's environment and nbgrader config (Formgrader);
    students the student distribution's nbgrader config (course id, exchange)."""
    env = dict(spawner.environment)
    if spawner.user.name in INSTRUCTORS:
        course = home_of(spawner) / COURSE_DIR
        spawner.cmd = [str(course / ".venv" / "bin" / "jupyterhub-singleuser")]
        env["JUPYTER_CONFIG_PATH"] = str(course / "hub" / "instructor")
    else:
        env["JUPYTER_CONFIG_PATH"] = STUDENT_DIST
    spawner.environment = env


c.Spawner.pre_spawn_hook = course_role

# nbgrader for the course's students: which course, where its exchange is, and how Validate
# runs a notebook (as the grader will).
import os
import sys

c = get_config()  # noqa: F821 (provided by traitlets when nbgrader loads this file)
c.CourseDirectory.course_id = "accel-course"
c.Exchange.root = os.environ.get("NBGRADER_EXCHANGE", "/srv/nbgrader/exchange")

# Each cell may run for 180 s, as when graded (nbgrader's default is 30 s) ...
c.Execute.timeout = 180
# ... with the grader's kernel client where the course's tools/ is beside this file
# (tools/kernel_client.py: it never sleeps through a cell's reply); elsewhere nbgrader's own.
HERE = os.path.dirname(os.path.abspath(__file__))
if os.path.isfile(os.path.join(HERE, "tools", "kernel_client.py")) and HERE not in sys.path:
    sys.path.append(HERE)
try:
    import tools.kernel_client  # noqa: F401
except ImportError:
    pass
else:
    c.AsyncKernelManager.client_class = "tools.kernel_client.WakefulKernelClient"

#!/bin/sh
# The students' JupyterLab: nbgrader's instructor tools off in this environment (sys-prefix),
# with nbgrader's documented commands. Formgrader, Create Assignment and Course List go;
# Assignment List (fetch, submit) and Validate stay. `make lab` and Binder's postBuild run
# this; JUPYTER picks the jupyter command (default: the one on PATH).
set -e
JUPYTER="${JUPYTER:-jupyter}"
PLUGINS="@jupyter/nbgrader:formgrader @jupyter/nbgrader:create-assignment @jupyter/nbgrader:course-list"
$JUPYTER labextension disable --level=sys_prefix $PLUGINS
# JupyterLab >= 4.1 lets users re-enable a disabled plugin in its UI unless it is locked
$JUPYTER labextension lock --level=sys_prefix $PLUGINS
$JUPYTER server extension disable --sys-prefix \
    nbgrader.server_extensions.formgrader nbgrader.server_extensions.course_list

"""The student distribution (`make student-dist`): the course without its solutions."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from traitlets.config import PyFileConfigLoader

from tools.course import RELEASED, ROOT
from tools.dist import build, student_makefile

INSTRUCTOR_PLUGINS = ("formgrader", "create-assignment", "course-list")
INSTRUCTOR_SERVER = ("formgrader", "course_list")


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    return build(tmp_path_factory.mktemp("dist") / "student", git=True)


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*")
            if p.is_file() and ".git" not in p.relative_to(root).parts}


def test_no_solutions_and_no_hidden_tests(dist):
    assert not (dist / "solutions").exists() and not (dist / "tests").exists()
    for rel, data in _files(dist).items():
        text = data.decode("utf-8", errors="ignore")
        for marker in ("BEGIN SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"):
            assert marker not in text, f"{rel} holds {marker!r}"
    tools = {p.name for p in (dist / "tools").iterdir()} if (dist / "tools").exists() else set()
    assert not tools & {"course.py", "dist.py", "guide_check.py", "grading.py", "audit.py"}


def test_notebooks_are_the_released_ones(dist):
    assert _files(dist / "notebooks") == _files(RELEASED)


def test_the_library_imports_from_the_distribution(dist):
    proc = subprocess.run([sys.executable, "-c", "import accel_lib; print(accel_lib.__file__)"],
                          cwd=dist, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(dist)})
    assert proc.returncode == 0, proc.stderr
    assert Path(proc.stdout.strip()).is_relative_to(dist)
    for name in ("pyproject.toml", "requirements.lock", "environment.yml", "binder/postBuild",
                 "binder/environment.yml", "Makefile", "README.md", ".gitignore"):
        assert (dist / name).is_file(), name


def _config(path: Path) -> dict:
    loader = PyFileConfigLoader(path.name, path=str(path.parent))
    return loader.load_config()


def test_student_nbgrader_config_has_the_course_and_no_source(dist, monkeypatch):
    monkeypatch.delenv("NBGRADER_EXCHANGE", raising=False)
    student = _config(dist / "nbgrader_config.py")
    instructor = _config(ROOT / "nbgrader_config.py")
    assert student.CourseDirectory.course_id == instructor.CourseDirectory.course_id
    assert "source_directory" not in student.CourseDirectory
    assert "root" not in student.CourseDirectory and "db_url" not in student.CourseDirectory
    assert student.Exchange.root == "/srv/nbgrader/exchange"
    monkeypatch.setenv("NBGRADER_EXCHANGE", "/shared/exchange")
    assert _config(dist / "nbgrader_config.py").Exchange.root == "/shared/exchange"
    assert "solutions" not in (dist / "nbgrader_config.py").read_text()


# What Validate (nbgrader's validate handler and command) makes of a config file: nbgrader's
# Execute as the Validator builds it, and the kernel client its kernel manager would use.
_VALIDATE_SETTINGS = """
import sys
from nbgrader.preprocessors import Execute
from nbgrader.validator import Validator
from traitlets.config.loader import PyFileConfigLoader

config = PyFileConfigLoader("nbgrader_config.py", path=sys.argv[1]).load_config()
execute = Execute(parent=Validator(config=config))
client = execute.kernel_manager_class(config=execute.config).client_factory
print(execute.timeout, f"{client.__module__}.{client.__name__}",
      sys.modules[client.__module__].__file__)
"""


def _validate_settings(folder: Path, cwd: Path) -> tuple[int, str, Path]:
    """(cell timeout, kernel client class, its file) with ``folder``'s nbgrader_config.py, in
    a fresh interpreter started in ``cwd`` where nothing of the course is on the path."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, "-c", _VALIDATE_SETTINGS, str(folder)], cwd=cwd,
                          env=env, capture_output=True, text=True)
    assert proc.returncode == 0 and not proc.stderr, proc.stderr
    timeout, client, path = proc.stdout.split()
    return int(timeout), client, Path(path)


def test_students_validate_with_the_graders_timeout_and_kernel_client(dist, tmp_path):
    timeout, client, path = _validate_settings(dist, cwd=tmp_path)
    assert timeout == 180
    assert client == "tools.kernel_client.WakefulKernelClient"
    assert path == dist / "tools" / "kernel_client.py"  # the distribution's own copy


def test_a_copy_of_the_students_config_alone_validates_with_nbgrader_s_client(dist, tmp_path):
    """e.g. ~/.jupyter/nbgrader_config.py, with no tools/ beside it: nbgrader's stock client,
    the same timeout, nothing printed."""
    home = tmp_path / ".jupyter"
    home.mkdir()
    shutil.copy2(dist / "nbgrader_config.py", home)
    timeout, client, _ = _validate_settings(home, cwd=tmp_path)
    assert timeout == 180
    assert client == "jupyter_client.asynchronous.client.AsyncKernelClient"


def test_make_lab_sets_up_students_and_needs_nothing_left_out(dist):
    dry = subprocess.run(["make", "-n", "lab"], cwd=dist, capture_output=True, text=True)
    assert dry.returncode == 0, dry.stderr
    assert "student_setup.sh" in dry.stdout and "-m tools.lab --port" in dry.stdout  # = jupyter lab
    assert "solutions" not in dry.stdout and "tools.course" not in dry.stdout
    # every course module the recipes and Binder's build run is in the distribution
    used = dry.stdout + (dist / "binder" / "postBuild").read_text()
    for module in re.findall(r"-m ((?:tools|accel_lib|binder)[\w.]*)", used):
        path = dist / module.replace(".", "/")
        assert path.with_suffix(".py").is_file() or (path / "__init__.py").is_file(), module
    for script in re.findall(r"(binder/[\w.]+)", used):
        assert (dist / script).is_file(), script
    assert "sh binder/student_setup.sh" in (dist / "binder" / "postBuild").read_text()
    for target in ("test", "release", "bench", "lock", "student-dist"):
        proc = subprocess.run(["make", "-n", target], cwd=dist, capture_output=True, text=True)
        assert proc.returncode != 0 and "No rule" in proc.stderr, target


def test_student_makefile_drops_only_the_maintainers_targets():
    text = student_makefile((ROOT / "Makefile").read_text())
    targets = set(re.findall(r"^([\w.-]+)\s*:(?!=)", text, flags=re.M))
    assert {"env", "lab", "clean", "help"} <= targets
    assert not targets & {"test", "lint", "bench", "release", "lock", "student-dist"}
    assert text.count("$(VENV)/.student-setup") == 2


def test_distribution_is_a_git_repository_with_every_file(dist):
    listed = subprocess.run(["git", "ls-files"], cwd=dist, capture_output=True, text=True,
                            check=True).stdout.split()
    assert set(listed) == set(_files(dist))


def _tree_digest(path: Path) -> str:
    digest = hashlib.sha256()
    for p in sorted(path.rglob("*")):
        if p.is_file():
            digest.update(str(p).encode() + p.read_bytes())
    return digest.hexdigest()


def test_student_setup_disables_the_instructor_tools(dist, tmp_path):
    """binder/student_setup.sh, run for a throw-away environment that sees the course
    environment's packages (a venv with a .pth) and a copy of its Jupyter config, so the
    shared environment stays as it is; then `jupyter ... list` in that environment."""
    shared = Path(sys.prefix)
    env = tmp_path / "env"
    subprocess.run([sys._base_executable, "-m", "venv", "--without-pip", str(env)], check=True)
    site = Path(sysconfig.get_paths(vars={"base": str(env), "platbase": str(env)})["purelib"])
    (site / "course.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    for script in ("jupyter", "jupyter-labextension", "jupyter-server"):
        lines = (shared / "bin" / script).read_text().split("\n")
        (env / "bin" / script).write_text("\n".join([f"#!{env}/bin/python", *lines[1:]]))
        (env / "bin" / script).chmod(0o755)
    etc = shared / "etc" / "jupyter"
    shutil.copytree(etc, env / "etc" / "jupyter")
    run_env = {**os.environ, "JUPYTER_CONFIG_DIR": str(tmp_path / "user"),
               "JUPYTER_DATA_DIR": str(tmp_path / "data"),
               "JUPYTER_PATH": str(shared / "share" / "jupyter"),
               "PATH": f"{env / 'bin'}{os.pathsep}{os.environ['PATH']}",
               "JUPYTER": str(env / "bin" / "jupyter")}
    run_env.pop("JUPYTER_CONFIG_PATH", None)
    before = _tree_digest(etc)

    setup = subprocess.run(["sh", "binder/student_setup.sh"], cwd=dist, env=run_env,
                           capture_output=True, text=True)
    assert setup.returncode == 0, setup.stdout + setup.stderr
    assert _tree_digest(etc) == before, "the course environment's config changed"
    jupyter = str(env / "bin" / "jupyter")
    lab = subprocess.run([jupyter, "labextension", "list"], env=run_env, capture_output=True,
                         text=True)
    listing = re.sub(r"\x1b\[[0-9;]*m", "", lab.stdout + lab.stderr)
    disabled = listing.split("Disabled extensions:")[1] if "Disabled" in listing else ""
    for plugin in INSTRUCTOR_PLUGINS:
        assert f"@jupyter/nbgrader:{plugin}" in disabled, listing
    assert "@jupyter/nbgrader:assignment-list" not in disabled  # students keep these
    assert "@jupyter/nbgrader:validate-assignment" not in disabled
    server = subprocess.run([jupyter, "server", "extension", "list"], env=run_env,
                            capture_output=True, text=True)
    listing = re.sub(r"\x1b\[[0-9;]*m", "", server.stdout + server.stderr)
    for ext in INSTRUCTOR_SERVER:
        assert f"nbgrader.server_extensions.{ext} disabled" in listing, listing
    for ext in ("assignment_list", "validate_assignment"):
        assert f"nbgrader.server_extensions.{ext} enabled" in listing, listing

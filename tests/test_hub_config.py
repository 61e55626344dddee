"""The course's JupyterHub configurations, read without starting anything (tests/test_hub.py
runs hub/jupyterhub_config.py for real): who gets which environment and nbgrader config,
and the Kubernetes values (hub/z2jh-values.yaml, never deployed by CI) hold together."""

from __future__ import annotations

import os
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from traitlets.config import Config, PyFileConfigLoader

ROOT = Path(__file__).resolve().parents[1]
HUB = ROOT / "hub"
EXCHANGE = "/srv/nbgrader/exchange"


def _spawner(name: str, home: str = "", environment: dict | None = None) -> SimpleNamespace:
    return SimpleNamespace(user=SimpleNamespace(name=name), home_dir=home, cmd=None, image=None,
                           environment=dict(environment or {}))


def _hub_config(monkeypatch, **env: str) -> Config:
    for name in ("COURSE_INSTRUCTORS", "COURSE_STUDENTS", "COURSE_STUDENT_DIST", "COURSE_DIR",
                 "NBGRADER_EXCHANGE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return PyFileConfigLoader("jupyterhub_config.py", path=str(HUB)).load_config()


def test_the_hub_gives_instructors_their_course_and_students_the_distribution(monkeypatch):
    config = _hub_config(monkeypatch, COURSE_INSTRUCTORS="grace, alan")
    assert config.JupyterHub.spawner_class.endswith("LocalProcessSpawner")
    assert config.JupyterHub.authenticator_class.endswith("PAMAuthenticator")
    assert config.Authenticator.allow_all is True
    assert config.Spawner.environment == {"NBGRADER_EXCHANGE": EXCHANGE}
    hook = config.Spawner.pre_spawn_hook
    for name in ("grace", "alan"):
        spawner = _spawner(name, f"/home/{name}", config.Spawner.environment)
        hook(spawner)
        assert spawner.cmd == [f"/home/{name}/accel-course/.venv/bin/jupyterhub-singleuser"]
        assert spawner.environment == {
            "NBGRADER_EXCHANGE": EXCHANGE,
            "JUPYTER_CONFIG_PATH": f"/home/{name}/accel-course/hub/instructor"}
    student = _spawner("ada", "/home/ada", config.Spawner.environment)
    hook(student)
    assert student.cmd is None  # the hub's own environment: the student distribution's
    assert student.environment == {"NBGRADER_EXCHANGE": EXCHANGE,
                                   "JUPYTER_CONFIG_PATH": "/opt/accel-course"}
    assert config.Spawner.environment == {"NBGRADER_EXCHANGE": EXCHANGE}  # not shared state


def test_the_hub_reads_its_settings_and_the_roster(monkeypatch, tmp_path):
    roster = tmp_path / "roster.csv"
    roster.write_text((ROOT / "docs" / "roster.example.csv").read_text())
    config = _hub_config(monkeypatch, COURSE_STUDENTS=str(roster), COURSE_DIR="teaching/accel",
                         COURSE_STUDENT_DIST="/srv/dist", NBGRADER_EXCHANGE="/mnt/exchange")
    ids = {line.split(",")[0] for line in roster.read_text().splitlines()[1:] if line}
    assert ids and config.Authenticator.allowed_users == ids | {"instructor"}
    assert "allow_all" not in config.Authenticator
    teacher = _spawner("instructor", "/home/instructor", config.Spawner.environment)
    config.Spawner.pre_spawn_hook(teacher)
    assert teacher.cmd == ["/home/instructor/teaching/accel/.venv/bin/jupyterhub-singleuser"]
    student = _spawner("lovelaceada", "/home/ada", config.Spawner.environment)
    config.Spawner.pre_spawn_hook(student)
    assert student.environment == {"NBGRADER_EXCHANGE": "/mnt/exchange",
                                   "JUPYTER_CONFIG_PATH": "/srv/dist"}
    proxy = HUB / "node_modules" / ".bin" / "configurable-http-proxy"
    if proxy.exists():  # make hub-deps
        assert config.ConfigurableHTTPProxy.command == [str(proxy)]


def test_the_instructors_nbgrader_config_is_the_course_config():
    config = PyFileConfigLoader("nbgrader_config.py", path=str(HUB / "instructor")).load_config()
    course = PyFileConfigLoader("nbgrader_config.py", path=str(ROOT)).load_config()
    assert config.CourseDirectory.root == str(ROOT)
    assert config.CourseDirectory == course.CourseDirectory
    assert config.Exchange == course.Exchange


def test_every_place_agrees_on_the_exchange(monkeypatch):
    monkeypatch.delenv("NBGRADER_EXCHANGE", raising=False)
    student = PyFileConfigLoader("nbgrader_config.py", path=str(ROOT / "tools" / "student"))
    assert student.load_config().Exchange.root == EXCHANGE
    values = yaml.safe_load((HUB / "z2jh-values.yaml").read_text())
    assert values["singleuser"]["extraEnv"]["NBGRADER_EXCHANGE"] == EXCHANGE
    assert EXCHANGE in (HUB / "jupyterhub_config.py").read_text()
    assert f"mkdir -p -m 777 {EXCHANGE}" in (ROOT / "docs" / "instructors.md").read_text()


@pytest.fixture(scope="module")
def values() -> dict:
    return yaml.safe_load((HUB / "z2jh-values.yaml").read_text())


def test_z2jh_values_use_only_the_charts_sections(values):
    # the chart's top-level sections (its values.schema.json rejects others)
    chart = {"hub", "proxy", "singleuser", "scheduling", "prePuller", "ingress", "cull",
             "debug", "rbac", "imagePullSecret", "imagePullSecrets", "custom", "global",
             "fullnameOverride", "nameOverride", "enabled"}
    assert set(values) <= chart, set(values) - chart
    single = values["singleuser"]
    assert set(single) <= {"image", "defaultUrl", "cpu", "memory", "extraEnv", "storage",
                           "profileList", "lifecycleHooks", "cmd", "networkPolicy"}
    assert set(single["image"]) == {"name", "tag"} and isinstance(single["image"]["tag"], str)
    assert single["memory"]["limit"] == "2G"  # the notebooks' budget


def test_z2jh_mounts_the_exchange_it_names(values):
    storage = values["singleuser"]["storage"]
    (volume,) = storage["extraVolumes"]
    (mount,) = storage["extraVolumeMounts"]
    assert mount["name"] == volume["name"] and volume["persistentVolumeClaim"]["claimName"]
    assert mount["mountPath"] == values["singleuser"]["extraEnv"]["NBGRADER_EXCHANGE"]


def test_z2jh_roles_hook_gives_each_their_image_and_config(values):
    code = values["hub"]["extraConfig"]["course-roles"]
    config = Config()
    exec(compile(code, "course-roles", "exec"), {"c": config})  # what the chart's hub does
    hook = config.KubeSpawner.pre_spawn_hook
    extra = values["singleuser"]["extraEnv"]
    teacher = _spawner("instructor", environment=extra)
    hook(teacher)
    assert teacher.image.endswith("/accel-course:2030.1")
    assert teacher.environment["JUPYTER_CONFIG_PATH"] == "/home/jovyan/accel-course/hub/instructor"
    student = _spawner("lovelaceada", environment=extra)
    hook(student)
    assert student.image is None  # the chart's singleuser.image: the student image
    target = re.search(r"--target-repo-dir (\S+)", (HUB / "z2jh-values.yaml").read_text())[1]
    assert student.environment == {**extra, "JUPYTER_CONFIG_PATH": target}
    assert extra == values["singleuser"]["extraEnv"]  # copied, not changed in place
    allowed = values["hub"]["config"]["Authenticator"]["allowed_users"]
    instructors = re.search(r"INSTRUCTORS = (\{.*\})", code)[1]
    assert set(eval(instructors)) <= set(allowed)  # noqa: S307 (a set literal of names)


def test_hub_files_hold_no_solution():
    for path in HUB.rglob("*"):
        if path.is_file() and "node_modules" not in path.parts:
            text = path.read_text()
            assert "BEGIN SOLUTION" not in text and "BEGIN HIDDEN TESTS" not in text, path
    assert os.access(HUB / "package-lock.json", os.R_OK)


def test_ci_runs_the_hub_test_and_make_test_installs_its_proxy():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "export ACCEL_REQUIRE_HUB=1" in ci and "apt-get install -y -qq nodejs npm" in ci
    assert ci.index("ACCEL_REQUIRE_HUB") < ci.index("\nmake test")
    makefile = (ROOT / "Makefile").read_text()
    test_rule = re.search(r"^test:.*$", makefile, re.M)[0]
    assert "$(HUB_PROXY)" in test_rule
    assert "$(HUB_PROXY): hub/package.json hub/package-lock.json\n\tcd hub && npm ci" in makefile

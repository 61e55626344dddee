"""pyproject.toml, requirements.lock, environment.yml and binder/ must not drift apart."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.version import Version

# conda-forge names that differ from PyPI's
ROOT = Path(__file__).resolve().parents[1]
CONDA_TO_PYPI = {"pytorch": "torch", "pytorch-cpu": "torch", "tensorflow-cpu": "tensorflow"}
CONDA_ONLY = {"python", "pip"}


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pyproject_requirements() -> dict[str, Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        reqs += extra
    return {norm(Requirement(r).name): Requirement(r) for r in reqs}


def lock_pins() -> dict[str, Version]:
    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, version = line.split("==")
            pins[norm(name)] = Version(version)
    return pins


def conda_packages(path) -> set[str]:
    spec = yaml.safe_load(path.read_text())
    names = set()
    for dep in spec["dependencies"]:
        if isinstance(dep, dict):
            names |= {norm(Requirement(p).name) for p in dep["pip"] if not p.startswith("-")}
        else:
            name = norm(re.split(r"[<>=!\s]", dep, maxsplit=1)[0])
            if name not in CONDA_ONLY:
                names.add(CONDA_TO_PYPI.get(name, name))
    return names


def test_lock_pins_every_declared_dependency_within_its_range():
    pins = lock_pins()
    for name, req in pyproject_requirements().items():
        assert name in pins, f"{name} is declared in pyproject.toml but not pinned in the lock"
        assert req.specifier.contains(pins[name], prereleases=True), \
            f"lock pins {name}=={pins[name]}, outside pyproject's range {req.specifier}"


def test_lock_pins_the_torch_builds_that_work_here():
    pins = lock_pins()
    assert pins["torch"] == Version("2.14.1") and pins["torchvision"] == Version("0.29.1")


@pytest.mark.parametrize("env_file", ["environment.yml", "binder/environment.yml"])
def test_conda_environments_list_the_same_packages(env_file):
    assert conda_packages(ROOT / env_file) == set(pyproject_requirements()), \
        f"{env_file} and pyproject.toml list different packages"


def test_binder_builds_cpu_only_and_installs_the_library():
    text = (ROOT / "binder" / "environment.yml").read_text()
    assert "pytorch-cpu" in text and "tensorflow-cpu" in text
    assert "pip install --no-deps -e ." in (ROOT / "binder" / "postBuild").read_text()

"""pyproject.toml, requirements.lock, environment.yml and binder/ must not drift apart.

The lock is what `make` installs (with the package, editable). Each other way in is checked by
what it would install, against the lock:
* environment.yml: conda gives Python 3.11 and pip only; pip installs the lock and the package.
* Binder: binder/environment.yml the same conda part, then binder/postBuild the lock's versions
  CPU-only: PyTorch's CPU builds of torch and torchvision (the same versions with the local
  label "+cpu"), without the packages that only PyPI's CUDA build of torch needs, and the package.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements.lock"
PACKAGE = "accel-lib"
ENV_FILES = ["environment.yml", "binder/environment.yml"]
# Binder's rule: PyTorch's CPU-only builds of these, from its CPU index ...
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
CPU_BUILDS = {"torch", "torchvision"}
# ... and none of these, which only the CUDA build of torch (PyPI's, on Linux) needs.
CUDA_ONLY = re.compile(r"nvidia-.*|cuda-.*|triton")


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pyproject_requirements() -> dict[str, Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        reqs += extra
    return {norm(Requirement(r).name): Requirement(r) for r in reqs}


def read_requirements(text: str) -> tuple[list[str], dict[str, Version]]:
    """The option lines and the `name==version` pins of a requirements file holding only those."""
    options, pins = [], {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("-"):
            options.append(line)
        elif line:
            name, version = line.split("==")
            pins[norm(name)] = Version(version)
    return options, pins


def lock_pins() -> dict[str, Version]:
    options, pins = read_requirements(LOCK.read_text())
    assert not options, f"requirements.lock holds options {options}: only exact pins belong there"
    return pins


def conda_spec(env_file: str) -> dict:
    return yaml.safe_load((ROOT / env_file).read_text())


def env_file_installs(env_file: str) -> dict[str, Version | None]:
    """What the pip section of env_file installs: every `-r FILE` must be the lock (its pins are
    returned) and every `-e PATH` this repository (returned as PACKAGE, version None: from source).
    conda and mamba run pip in the environment file's folder, so paths are relative to it."""
    installs: dict[str, Version | None] = {}
    for dep in conda_spec(env_file)["dependencies"]:
        if not isinstance(dep, dict):
            continue
        assert set(dep) == {"pip"}, f"{env_file}: unexpected section {set(dep) - {'pip'}}"
        for line in dep["pip"]:
            option, _, arg = line.partition(" ")
            where = ((ROOT / env_file).parent / arg.strip()).resolve()
            if option in ("-r", "--requirement"):
                assert where == LOCK, f"{env_file}: {line!r} is {where}, not the lock {LOCK}"
                installs.update(lock_pins())
            elif option in ("-e", "--editable"):
                assert where == ROOT, f"{env_file}: {line!r} is {where}, not the repository"
                installs[PACKAGE] = None
            else:
                pytest.fail(f"{env_file}: pip line {line!r} installs something beside the lock")
    return installs


def binder_lock() -> tuple[list[str], dict[str, Version]]:
    """What binder/postBuild pip-installs (before the package): it writes the output of
    binder/cpu_lock.py to a requirements file and installs that; run the script the same way."""
    post_build = (ROOT / "binder" / "postBuild").read_text()
    steps = [
        'python binder/cpu_lock.py requirements.lock > "$req"',
        'python -m pip install --no-cache-dir -r "$req"',
        "python -m pip install --no-deps --no-build-isolation -e .",  # as the Makefile does
        "python -m tools.lab --install-settings",  # the course's JupyterLab settings, likewise
    ]
    where = [post_build.find(step) for step in steps]
    assert -1 not in where and where == sorted(where), \
        f"binder/postBuild must run, in this order: {steps}"
    out = subprocess.run([sys.executable, "binder/cpu_lock.py", "requirements.lock"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    return read_requirements(out)


def test_lock_pins_every_declared_dependency_within_its_range():
    pins = lock_pins()
    for name, req in pyproject_requirements().items():
        assert name in pins, f"{name} is declared in pyproject.toml but not pinned in the lock"
        assert req.specifier.contains(pins[name], prereleases=True), \
            f"lock pins {name}=={pins[name]}, outside pyproject's range {req.specifier}"


def test_lock_pins_the_torch_builds_that_work_here():
    pins = lock_pins()
    assert pins["torch"] == Version("2.14.1") and pins["torchvision"] == Version("0.29.1")


@pytest.mark.parametrize("env_file", ENV_FILES)
def test_conda_gives_python_311_and_pip_only(env_file):
    """conda-forge's PyTorch and TensorFlow lag the lock's: everything else comes from pip."""
    spec = conda_spec(env_file)
    assert spec["channels"] == ["conda-forge"]
    conda_deps = sorted(dep for dep in spec["dependencies"] if isinstance(dep, str))
    assert conda_deps == ["pip", "python=3.11"], f"{env_file} installs {conda_deps} with conda"
    requires_python = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert SpecifierSet(requires_python["requires-python"]).contains("3.11")


def test_conda_environment_installs_exactly_the_lock_and_the_package():
    assert env_file_installs("environment.yml") == {**lock_pins(), PACKAGE: None}


def test_binder_environment_leaves_pip_to_postbuild():
    assert env_file_installs("binder/environment.yml") == {}, \
        "binder/postBuild installs the lock (CPU-only); a pip section would install it twice"


def test_binder_installs_the_lock_cpu_only():
    lock = lock_pins()
    options, binder = binder_lock()
    assert options == [f"--extra-index-url {CPU_INDEX}"], \
        "Binder needs PyTorch's CPU index beside PyPI, and no other option"
    assert set(binder) <= set(lock), f"Binder installs {set(binder) - set(lock)}, not in the lock"
    assert set(lock) - set(binder) == {name for name in lock if CUDA_ONLY.fullmatch(name)}, \
        "Binder must leave out exactly the lock's CUDA-only packages"
    for name, version in binder.items():
        if name in CPU_BUILDS:
            assert version.public == str(lock[name]) and version.local == "cpu", \
                f"Binder's {name}=={version}: the lock pins {lock[name]}, so {lock[name]}+cpu"
        else:
            assert version == lock[name], f"Binder's {name}=={version}, the lock's {lock[name]}"


def test_binder_leaves_out_only_what_the_cuda_build_of_torch_needs():
    """In this (the lock's) environment nothing that Binder installs, torch aside, requires a
    package that it leaves out: a new dependency on, say, triton would break Binder's image."""
    lock = lock_pins()
    _, binder = binder_lock()
    left_out = set(lock) - set(binder)
    for name in sorted((set(binder) - {"torch"}) | {PACKAGE}):
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            pytest.skip(f"{name} is not installed: this is not the lock's environment")
        if name != PACKAGE and Version(dist.version) != lock[name]:
            pytest.skip(f"{name} {dist.version} is installed, not the lock's {lock[name]}")
        for line in dist.requires or []:
            req = Requirement(line)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                assert norm(req.name) not in left_out, \
                    f"{name} requires {req.name}, which Binder leaves out as CUDA-only"

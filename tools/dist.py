"""The student distribution: the course as students get it, without solutions.

    python -m tools.dist build DEST [--git] [--force]    # what `make student-dist` runs

DEST (a new or empty folder) gets the released notebooks, the library, the environment
files (pyproject.toml, requirements.lock, environment.yml, binder/, the Makefile without
the maintainers' targets), a student README and a student nbgrader_config.py (course id,
exchange, and Validate run as the grader runs a notebook; no source directory), all from the
files git tracks here. JupyterLab there has nbgrader's instructor tools off:
``binder/student_setup.sh`` runs nbgrader's documented ``jupyter labextension disable`` /
``jupyter server extension disable`` commands in the environment, from ``make lab`` /
``make env`` and from Binder's postBuild.

Nothing that holds or needs solutions goes: no solutions/, no tests/, no tools but those
``make lab`` uses and the grader's kernel client (tools/kernel_client.py), which the
students' config gives Validate. The build fails if any file still holds a solution or
hidden-test marker.
With ``--git``, DEST becomes a git repository with one commit, ready to push as the students'
repository.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEMPLATES = Path(__file__).with_name("student")

FOLDERS = ("notebooks", "accel_lib", "binder")
FILES = ("pyproject.toml", "requirements.lock", "environment.yml", "LICENSE", "LICENSE.md")
# tools that `make lab` / Binder's postBuild may use, and the kernel client that the students'
# nbgrader_config.py gives Validate (as the grader has it); none of them needs solutions/
STUDENT_TOOLS = ("tools/__init__.py", "tools/lab.py", "tools/lab_overrides.json",
                 "tools/kernel_client.py")
# Makefile targets that need what students do not get (tests, solutions, benchmarks, ruff)
MAINTAINER_TARGETS = ("test", "lint", "bench", "release", "lock", "student-dist",
                      "guide-check", "autograde", "hub-deps")
LEAKS = ("BEGIN SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")
SETUP = "binder/student_setup.sh"
MAKE_BLOCK = f"""
# Student distribution (tools/dist.py adds this): nbgrader's instructor tools (Formgrader,
# Create Assignment, Course List) are switched off in the environment, with nbgrader's
# documented commands (binder/student_setup.sh; Binder's postBuild runs it too).
env lab: $(VENV)/.student-setup

$(VENV)/.student-setup: $(STAMP) {SETUP}
\tJUPYTER=$(BIN)/jupyter sh {SETUP}
\ttouch $@
"""
POSTBUILD_STEP = f"""
# Student distribution (tools/dist.py adds this): nbgrader's instructor tools off.
sh {SETUP}
"""
GITIGNORE = """.venv/
__pycache__/
*.pyc
.ipynb_checkpoints/
*.egg-info/
data/
"""


def tracked_files() -> list[str]:
    """Files git tracks here (relative paths); every file when this is no git checkout."""
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True,
                             check=True).stdout.decode()
        return [p for p in out.split("\0") if p and (ROOT / p).is_file()]
    except (OSError, subprocess.CalledProcessError):
        skip = {".git", ".venv", "__pycache__", ".ipynb_checkpoints"}
        return [str(p.relative_to(ROOT)) for p in ROOT.rglob("*")
                if p.is_file() and not skip & set(p.relative_to(ROOT).parts)]


def student_makefile(text: str) -> str:
    """The course Makefile without the maintainers' targets, plus the student setup step."""
    kept = []
    for paragraph in text.split("\n\n"):
        rules = re.findall(r"^([A-Za-z0-9_.$()-]+)\s*:(?!=)", paragraph, flags=re.M)
        if set(rules) & set(MAINTAINER_TARGETS):
            continue
        targets = "|".join(MAINTAINER_TARGETS)
        lines = [line for line in paragraph.split("\n")  # their lines in comments and help
                 if not re.search(rf"^#\s+make ({targets})\b|make ({targets}) ", line)]
        kept.append("\n".join(lines))
    out = "\n\n".join(kept)
    out = re.sub(r"^(# Other targets:).*$", r"\1 clean (see `make help`).", out, flags=re.M)
    out = re.sub(r"^(\.PHONY:.*)$", lambda m: " ".join(
        w for w in m.group(1).split() if w not in MAINTAINER_TARGETS), out, flags=re.M)
    return out.rstrip("\n") + "\n" + MAKE_BLOCK


def leaks(dest: Path) -> list[str]:
    """Files under ``dest`` that hold a solution or hidden tests."""
    found = []
    for path in dest.rglob("*"):
        if path.is_file() and ".git" not in path.relative_to(dest).parts:
            text = path.read_bytes().decode("utf-8", errors="ignore")
            found += [f"{path.relative_to(dest)}: {m}" for m in LEAKS if m in text]
    if (dest / "solutions").exists():
        found.append("solutions/")
    return found


def _is_build(path: Path) -> bool:
    """Is ``path`` a student distribution this module wrote (safe to replace)?"""
    return ((path / SETUP).is_file() and (path / "notebooks").is_dir()
            and not (path / "solutions").exists() and not (path / "tools" / "dist.py").exists())


def build(dest: Path, git: bool = False, force: bool = False) -> Path:
    """Write the student distribution into ``dest`` (new or empty; with ``force``, an
    earlier build there is replaced); returns ``dest``."""
    dest = dest.resolve()
    if dest == ROOT or ROOT in dest.parents and dest.parts[len(ROOT.parts)] in FOLDERS:
        raise SystemExit(f"{dest}: choose a folder outside the course's own folders")
    if dest.exists() and any(dest.iterdir()):
        if not (force and _is_build(dest)):
            raise SystemExit(f"{dest} is not empty" + ("" if force else
                                                       " (--force replaces an earlier build)"))
        shutil.rmtree(dest)
    dest.mkdir(parents=True, exist_ok=True)
    for rel in tracked_files():
        top = rel.split("/", 1)[0]
        if top in FOLDERS or rel in FILES or rel in STUDENT_TOOLS:
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, dest / rel)
    (dest / "Makefile").write_text(student_makefile((ROOT / "Makefile").read_text()))
    postbuild = dest / "binder" / "postBuild"
    if postbuild.exists():
        postbuild.write_text(postbuild.read_text().rstrip("\n") + "\n" + POSTBUILD_STEP)
    shutil.copy2(TEMPLATES / "student_setup.sh", dest / SETUP)
    shutil.copy2(TEMPLATES / "README.md", dest / "README.md")
    shutil.copy2(TEMPLATES / "nbgrader_config.py", dest / "nbgrader_config.py")
    (dest / ".gitignore").write_text(GITIGNORE)
    problems = leaks(dest)
    if problems:
        raise SystemExit("the student distribution would leak:\n" + "\n".join(problems))
    if git:
        run = {"cwd": dest, "check": True, "capture_output": True}
        subprocess.run(["git", "init", "-q"], **run)
        subprocess.run(["git", "add", "-A"], **run)
        subprocess.run(["git", "-c", "user.name=accel-course", "-c",
                        "user.email=accel-course@localhost", "commit", "-q", "-m",
                        "The course, student edition"], **run)
    return dest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="action", required=True)
    b = sub.add_parser("build", help="write the student distribution into DEST")
    b.add_argument("dest", type=Path)
    b.add_argument("--git", action="store_true", help="make DEST a git repository")
    b.add_argument("--force", action="store_true", help="replace an earlier build in DEST")
    args = parser.parse_args(argv)
    dest = build(args.dest, git=args.git, force=args.force)
    print(f"student distribution in {dest}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""JupyterLab as a learner meets it: the course's settings and the `make lab` command line.

    python -m tools.lab [--port N] [JUPYTER-LAB-OPTIONS...]   # what `make lab` runs
    python -m tools.lab --install-settings                    # settings only (Binder's postBuild)

Settings: ``tools/lab_overrides.json`` holds JupyterLab *settings overrides*, i.e. new
defaults that a learner can still change in Settings -> Settings Editor:

``@jupyterlab/apputils-extension:notification``
    ``fetchNews: "false"``: no "Would you like to get notified about official Jupyter
    news?" pop-up (JupyterLab asks while the setting is ``"none"``, its default), and no
    request to the Jupyter news feed: the course runs offline.
    ``checkForUpdates: false``: no request for newer JupyterLab versions either.

They are installed as ``<app dir>/settings/overrides.json``, the file JupyterLab reads
overrides from (the app dir is the environment's ``share/jupyter/lab``; ``jupyter lab
path`` prints it). Keys already in that file are kept unless the course sets them.

The command line opens the course's ``notebooks/`` as the start page, serves the whole
repository, and adds ``--allow-root`` when run as root (containers, CI). The browser test
(tests/test_browser.py) starts JupyterLab through :func:`lab_command` too.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OVERRIDES = Path(__file__).with_name("lab_overrides.json")
START_PAGE = "/lab/tree/notebooks"
DEFAULT_PORT = 8888


def settings_dir() -> Path:
    """The application settings directory of the JupyterLab in this environment."""
    from jupyterlab.commands import get_app_dir  # honours $JUPYTERLAB_DIR like JupyterLab

    return Path(get_app_dir()) / "settings"


def _merge(base: dict, new: dict) -> dict:
    out = dict(base)
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def install_settings(target_dir: Path | None = None) -> Path:
    """Merge the course's overrides into ``overrides.json`` in ``target_dir``.

    ``target_dir`` defaults to :func:`settings_dir`. Idempotent: the file is rewritten
    (atomically) only when something changes. Returns the path of ``overrides.json``.
    """
    target = Path(target_dir or settings_dir()) / "overrides.json"
    current: dict = {}
    if target.exists():
        try:
            current = json.loads(target.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise ValueError(f"{target} is not valid JSON ({err}); fix or remove it") from err
    merged = _merge(current, json.loads(OVERRIDES.read_text(encoding="utf-8")))
    if merged != current or not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(merged, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(tmp, target)
    return target


def lab_command(port: int = DEFAULT_PORT, root_dir: Path = ROOT,
                extra: Sequence[str] = ()) -> list[str]:
    """The ``jupyter lab`` command line that `make lab` runs, plus ``extra`` options."""
    cmd = [sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={root_dir}",
           f"--port={port}", f"--LabApp.default_url={START_PAGE}"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    return cmd + list(extra)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], allow_abbrev=False,
        epilog="Other options are passed on to `jupyter lab`.")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--install-settings", action="store_true",
                        help="only install the course's JupyterLab settings overrides")
    args, rest = parser.parse_known_args(argv)
    target = install_settings()
    if args.install_settings:
        print(f"installed the course's JupyterLab settings overrides in {target}")
        return 0
    cmd = lab_command(port=args.port, extra=rest)
    sys.stdout.flush()
    os.execv(cmd[0], cmd)  # replaces this process: Ctrl-C and exit codes are JupyterLab's


if __name__ == "__main__":
    raise SystemExit(main())

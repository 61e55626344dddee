"""JupyterLab as a learner meets it, in a real browser (headless Chromium driven by Playwright).

JupyterLab starts through the command line `make lab` runs (tools/lab.py: the course's
settings overrides, notebooks/ as the start page), on a free port with a token, serving a
scratch copy of the released notebooks (JupyterLab's autosave must not write outputs into
notebooks/). For every released notebook the test does what a learner does first: open it,
Run -> Run All Cells, wait, and look. It asserts that every code cell ran, that errors appear
only in exercise cells (nbgrader solution or test cells), that every widget and every figure
rendered, and that JupyterLab did not ask about Jupyter news. Screenshots are written to
the test's tmp_path (the path is printed).

Needs Debian's Chromium (`apt-get install chromium`) and the Python package playwright (in
the dev extra); without them the tests skip, unless ACCEL_REQUIRE_BROWSER=1 (set by .ci/run)
makes that an error.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from tools.lab import install_settings, lab_command

ROOT = Path(__file__).resolve().parents[1]
RELEASED = ROOT / "notebooks"
NOTEBOOKS = sorted(p.relative_to(RELEASED).as_posix() for p in RELEASED.glob("*/*.ipynb")
                   if ".ipynb_checkpoints" not in p.parts)
CHROMIUM = Path("/usr/bin/chromium")
NEWS_QUESTION = "Would you like to get notified about official Jupyter news?"
SERVER_START_S = 120
RUN_ALL_S = 480  # one notebook, Run All: ~10-60 s on 2 busy cores; generous, never a speed claim
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def _missing() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the Python package playwright is missing (pip install -e '.[dev]')"
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing: apt-get install chromium"
    return None


if (_why := _missing()) is not None:
    if os.environ.get("ACCEL_REQUIRE_BROWSER") == "1":
        raise RuntimeError(f"browser tests required (ACCEL_REQUIRE_BROWSER=1), but {_why}")
    pytest.skip(f"browser tests need Chromium and playwright: {_why}", allow_module_level=True)

from playwright.sync_api import Browser, Page, sync_playwright  # noqa: E402


@dataclass
class Lab:
    url: str
    token: str
    root: Path
    log: Path

    def api(self, path: str, method: str = "GET") -> object:
        req = urllib.request.Request(f"{self.url}{path}", method=method,
                                     headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            body = resp.read()
        return json.loads(body) if body else None

    def page_url(self, path: str) -> str:
        # reset: a fresh workspace, not the tabs the previous test left open
        return f"{self.url}{path}?token={self.token}&reset"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(proc: subprocess.Popen) -> None:
    """Stop JupyterLab and everything it started (kernels run in their own sessions)."""
    try:
        family = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        family = []
    proc.send_signal(signal.SIGTERM)  # JupyterLab shuts its kernels down on SIGTERM
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=30)
    _, alive = psutil.wait_procs(family, timeout=10)
    for p in alive:
        p.kill()
    psutil.wait_procs(alive, timeout=10)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory):
    home = tmp_path_factory.mktemp("lab_home")
    root = tmp_path_factory.mktemp("lab_course")
    shutil.copytree(RELEASED, root / "notebooks",
                    ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    install_settings()  # as `make lab` does
    token = os.urandom(16).hex()
    env = {**os.environ, "HOME": str(home), "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
           "JUPYTER_CONFIG_DIR": str(home / "config"), "IPYTHONDIR": str(home / "ipython"),
           "JUPYTERLAB_SETTINGS_DIR": str(home / "user-settings"),
           "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
           "MPLCONFIGDIR": str(home / "matplotlib"), "TF_CPP_MIN_LOG_LEVEL": "3"}
    cmd = lab_command(port=_free_port(), root_dir=root, extra=[
        "--no-browser", "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={token}",
        "--LabApp.expose_app_in_browser=True"])  # window.jupyterapp: read cells' outputs
    log = home / "jupyterlab.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        # the port is free when chosen, but another process may take it first: JupyterLab
        # then moves to the next one and says where it went in its runtime file
        deadline = time.monotonic() + SERVER_START_S
        info = None
        while info is None:
            if proc.poll() is not None:
                pytest.fail(f"JupyterLab exited ({proc.returncode}):\n{log.read_text()}")
            if time.monotonic() > deadline:
                pytest.fail(f"JupyterLab did not start in {SERVER_START_S} s:\n{log.read_text()}")
            for f in (home / "runtime").glob(f"jpserver-{proc.pid}.json"):
                info = json.loads(f.read_text())
            time.sleep(0.5)
        server = Lab(url=f"http://127.0.0.1:{info['port']}", token=token, root=root, log=log)
        while True:
            try:
                server.api("/api/status")
                break
            except (urllib.error.URLError, ConnectionError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        yield server
    finally:
        _stop(proc)


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(60_000)
    pg = context.new_page()
    yield pg
    context.close()


def _app_ready(page: Page) -> None:
    page.wait_for_function("() => window.jupyterapp !== undefined", timeout=120_000)
    page.evaluate("() => window.jupyterapp.restored")


def _assert_no_news_question(page: Page) -> None:
    assert page.get_by_text(NEWS_QUESTION).count() == 0, \
        "JupyterLab asks about Jupyter news: the settings overrides were not applied"


def test_the_overrides_are_read_and_the_start_page_is_the_notebooks(lab: Lab, page: Page,
                                                                      tmp_path: Path):
    plugin = lab.api("/lab/api/settings/@jupyterlab/apputils-extension:notification")
    defaults = {k: v.get("default") for k, v in plugin["schema"]["properties"].items()}
    assert defaults["fetchNews"] == "false" and defaults["checkForUpdates"] is False, \
        f"JupyterLab does not read the course's overrides (tools/lab_overrides.json): {defaults}"

    page.goto(lab.page_url("/"))  # the server's root redirects to the start page
    _app_ready(page)
    listing = page.locator(".jp-DirListing-content")
    first = NOTEBOOKS[0].split("/")[0]
    listing.get_by_text(first, exact=True).wait_for()
    page.wait_for_timeout(3000)  # JupyterLab asks about news right after it has restored
    page.screenshot(path=tmp_path / "start_page.png")
    print(f"screenshots in {tmp_path}")
    crumbs = page.locator(".jp-BreadCrumbs").inner_text()
    assert crumbs.strip("/ \n") == "notebooks", f"the file browser opens on {crumbs!r}"
    _assert_no_news_question(page)


# The notebook's model: what the kernel sent for each cell (nbclient would see the same)
MODEL_JS = """() => window.jupyterapp.shell.currentWidget.content.widgets.map((cell, index) => {
  const code = cell.model.type === 'code';
  return {
    index, code,
    count: code ? cell.model.executionCount : null,
    outputs: (code ? cell.model.outputs.toJSON() : []).map(o => ({
      type: o.output_type, mimes: Object.keys(o.data || {}),
      error: o.output_type === 'error' ? `${o.ename}: ${o.evalue}` : null})),
  };
})"""

# What a learner sees of one cell's outputs, once it is scrolled into view (the notebook
# skips rendering off-screen cells): per output of the model, its rendered widget and images
VIEW_JS = """index => {
  const cell = window.jupyterapp.shell.currentWidget.content.widgets[index];
  const area = cell.node.querySelector('.jp-Cell-outputArea');
  const shown = el => el !== null && el.getBoundingClientRect().height > 0;
  const children = [...(area ? area.children : [])]
    .filter(el => el.classList.contains('jp-OutputArea-child'));
  return {
    outputs: children.map(child => ({
      widget: shown(child.querySelector('.jupyter-widgets')),
      images: [...child.querySelectorAll('img')]
        .map(img => img.complete && img.naturalWidth > 0 && shown(img)),
    })),
    text: area ? area.textContent : '',
  };
}"""

# Run All runs the code cells one after the other: the running one shows [*], one that ran
# shows its count
QUEUE_JS = """() => {
  const panel = window.jupyterapp.shell.currentWidget;
  const code = panel.content.widgets.filter(c => c.model.type === 'code');
  const kernel = panel.sessionContext.session?.kernel;
  return {
    cells: code.length,
    running: code.filter(c =>
      (c.node.querySelector('.jp-InputPrompt')?.textContent || '').includes('*')).length,
    ran: code.filter(c => c.model.executionCount !== null).length,
    idle: kernel?.status === 'idle',
  };
}"""
QUIET_S = 5  # idle this long with nothing running: Run All has stopped


def _wait_for_run_all(page: Page) -> None:
    """Until every code cell ran, or the kernel stays idle with nothing running."""
    started = time.monotonic()
    quiet_since = None
    while time.monotonic() < started + RUN_ALL_S:
        q = page.evaluate(QUEUE_JS)
        if q["ran"] == q["running"] == 0 and time.monotonic() > started + 60:
            pytest.fail("Run -> Run All Cells did not start a single cell in 60 s")
        done = q["idle"] and q["running"] == 0
        if done and q["ran"] == q["cells"]:
            return
        if not done:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since > QUIET_S and q["ran"] > 0:
            return
        time.sleep(0.5)
    pytest.fail(f"Run All did not finish in {RUN_ALL_S} s: {q}")


def _exercise_cells(path: Path) -> set[int]:
    cells = json.loads(path.read_text())["cells"]
    return {i for i, c in enumerate(cells)
            if c["cell_type"] == "code"
            and (c["metadata"].get("nbgrader", {}).get("solution")
                 or c["metadata"].get("nbgrader", {}).get("grade"))}


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_run_all_shows_everything_before_the_exercises(lab: Lab, page: Page, tmp_path: Path,
                                                       notebook: str):
    print(f"screenshots in {tmp_path}")
    exercises = _exercise_cells(lab.root / "notebooks" / notebook)
    page.goto(lab.page_url(f"/lab/tree/notebooks/{notebook}"))
    _app_ready(page)
    page.wait_for_function(
        "() => window.jupyterapp.shell.currentWidget?.sessionContext?.session?.kernel"
        "?.status === 'idle'", timeout=120_000)
    page.screenshot(path=tmp_path / "0_opened.png")
    try:
        page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
        page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
        started = time.monotonic()
        _wait_for_run_all(page)
        seconds = time.monotonic() - started
        # widgets render after their outputs arrive
        page.wait_for_function(
            "() => !document.body.textContent.includes('Loading widget...')", timeout=60_000)
        page.screenshot(path=tmp_path / "1_after_run_all.png")
        cells = page.evaluate(MODEL_JS)
        views = _look_at_outputs(page, cells, tmp_path)
        _assert_no_news_question(page)
    finally:
        for session in lab.api("/api/sessions"):
            lab.api(f"/api/sessions/{session['id']}", method="DELETE")
    print(f"{notebook}: Run All took {seconds:.1f} s")

    code = [c for c in cells if c["code"]]
    errors = {c["index"]: [o["error"] for o in c["outputs"] if o["error"]] for c in code}
    errors = {i: e for i, e in errors.items() if e}
    not_run = [c["index"] for c in code if c["count"] is None]
    assert not not_run, (
        f"Run All stopped: code cells {not_run} never ran (cells with errors: {errors}); "
        "exercise cells need the raises-exception tag")
    outside = {i: e for i, e in errors.items() if i not in exercises}
    assert not outside, f"errors outside the exercise cells {sorted(exercises)}: {outside}"

    n_widgets = n_figures = 0
    for cell in code:
        view = views.get(cell["index"])
        if view is None:
            continue
        i = cell["index"]
        assert "Error displaying widget" not in view["text"], f"cell {i}: a widget failed"
        assert len(view["outputs"]) == len(cell["outputs"]), \
            f"cell {i}: {len(cell['outputs'])} outputs, {len(view['outputs'])} rendered"
        for output, seen in zip(cell["outputs"], view["outputs"], strict=True):
            if WIDGET_VIEW in output["mimes"]:
                n_widgets += 1
                assert seen["widget"], f"cell {i}: a widget did not render"
            elif "image/png" in output["mimes"]:
                n_figures += 1
                assert seen["images"], f"cell {i}: a figure did not render"
            assert all(seen["images"]), f"cell {i}: a broken image"
    print(f"{notebook}: {n_widgets} widgets and {n_figures} figures rendered")
    assert n_widgets > 0, "no widget (every notebook has an ipywidgets explorer)"
    assert n_figures > 0, "no figure"


def _look_at_outputs(page: Page, cells: list[dict], out: Path) -> dict[int, dict]:
    """Scroll to every cell with a widget or a figure, read what it shows, screenshot it."""
    views = {}
    for cell in cells:
        mimes = {m for o in cell["outputs"] for m in o["mimes"]}
        if not mimes & {WIDGET_VIEW, "image/png"}:
            continue
        i = cell["index"]
        page.evaluate("i => window.jupyterapp.shell.currentWidget.content.widgets[i].node"
                      ".scrollIntoView({block: 'start'})", i)
        page.wait_for_timeout(500)
        views[i] = page.evaluate(VIEW_JS, i)
        page.screenshot(path=out / f"cell_{i:02d}.png")
    return views

"""A term on the course's JupyterHub (hub/jupyterhub_config.py), on localhost.

A real JupyterHub with its real proxy (configurable-http-proxy from hub/node_modules,
``make hub-deps``) starts from the course's hub config, with two changes for a test machine:
a dummy login (DummyAuthenticator) and users without system accounts
(SimpleLocalProcessSpawner, homes in a temporary folder). Three users: ``instructor``,
whose home holds a clone of the course (the toy course of tests/test_grading.py with the
course's nbgrader config, tools/ and hub/instructor/, and its environment as ``.venv``),
and two students; the students' config is the student distribution's (``make student-dist``),
the exchange a shared temporary folder. The test drives everything through the Hub's REST
API (users, servers, tokens) and each user's own server, with that user's token, as the
JupyterLab front ends do:

* the instructor generates and releases the assignment (Formgrader's API);
* each student fetches it (the Assignments tab's API), answers it (the contents API: one
  right, one wrong) and submits it;
* the instructor collects (Formgrader), autogrades in parallel in a terminal of their server
  (``python -m tools.autograde``, the guide's ``make autograde``), reads the scores
  (Formgrader), generates and releases feedback (Formgrader);
* each student fetches the feedback, which shows their result and no hidden test.

Needs Node.js (``apt-get install nodejs npm``) and ``make hub-deps``; without them the test
skips, unless ACCEL_REQUIRE_HUB=1 (set by .ci/run) makes that an error.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parents[1]
HUB = ROOT / "hub"
PROXY = HUB / "node_modules" / ".bin" / "configurable-http-proxy"
COURSE_ID = "accel-course"
INSTRUCTOR = "instructor"
STUDENTS = ("lovelaceada", "turingalan")
START_S = 120  # the hub, and each server: seconds before the test gives up
AUTOGRADE_S = 240


def _missing() -> str | None:
    if shutil.which("node") is None:
        return "Node.js is missing (apt-get install nodejs npm), and with it JupyterHub's proxy"
    if not PROXY.exists():
        return f"{PROXY.relative_to(ROOT)} is missing: run `make hub-deps` (npm)"
    try:
        import jupyterhub  # noqa: F401
        import websocket  # noqa: F401
    except ImportError as e:
        return f"the Python package {e.name} is missing (make env)"
    return None


if (_why := _missing()) is not None:
    if os.environ.get("ACCEL_REQUIRE_HUB") == "1":
        raise RuntimeError(f"the JupyterHub test is required (ACCEL_REQUIRE_HUB=1), but {_why}")
    pytest.skip(f"the JupyterHub test needs Node.js and configurable-http-proxy: {_why}",
                allow_module_level=True)


def _free_ports(n: int) -> tuple[int, ...]:
    """``n`` distinct ports free on localhost (held together while the OS picks them)."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(n)]
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return tuple(s.getsockname()[1] for s in socks)


@dataclass
class Hub:
    url: str
    token: str  # the test's service token: admin of users, servers and tokens
    log: Path
    proc: subprocess.Popen
    tokens: dict[str, str] = field(default_factory=dict)  # user -> their own API token

    def request(self, method: str, url: str, token: str, body: object = None,
                timeout: float = 60) -> object:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(url, data=data, method=method, headers={
            "Authorization": f"token {token}", "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                text = resp.read().decode()
        except urllib.error.HTTPError as e:
            raise AssertionError(f"{method} {url}: {e.code} {e.read().decode()[:2000]}\n"
                                 f"{self.tail()}") from None
        return json.loads(text) if text.strip() else None

    def api(self, method: str, path: str, body: object = None) -> object:
        """The Hub's REST API, as the test's admin service."""
        return self.request(method, f"{self.url}/hub/api{path}", self.token, body)

    def server(self, user: str, method: str, path: str, body: object = None,
               timeout: float = 60) -> object:
        """``user``'s own Jupyter server, with ``user``'s token."""
        return self.request(method, f"{self.url}/user/{user}{path}", self.tokens[user], body,
                            timeout)

    def tail(self, n: int = 60) -> str:
        lines = self.log.read_text(errors="replace").splitlines() if self.log.exists() else []
        return "--- jupyterhub log (tail) ---\n" + "\n".join(lines[-n:])


def _write_config(work: Path, ports: tuple[int, int, int], token: str) -> Path:
    """The course's hub config, with a dummy login, account-less users and local ports."""
    public, hub, proxy_api = ports
    config = work / "jupyterhub_test_config.py"
    config.write_text(f'''c = get_config()  # noqa: F821
load_subconfig("jupyterhub_config.py", path={str(HUB)!r})  # noqa: F821 the course's hub
c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allow_all = True  # the users come through the REST API
c.JupyterHub.spawner_class = "simple"
c.SimpleLocalProcessSpawner.home_dir_template = {str(work / "home" / "{username}")!r}
c.JupyterHub.bind_url = "http://127.0.0.1:{public}"
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = {hub}
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{proxy_api}"
c.ConfigurableHTTPProxy.pid_file = {str(work / "proxy.pid")!r}
c.JupyterHub.db_url = "sqlite:///{work / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = {str(work / "cookie_secret")!r}
c.JupyterHub.services = [{{"name": "term", "api_token": {token!r}}}]
c.JupyterHub.load_roles = [{{"name": "term", "services": ["term"], "scopes": [
    "admin:users", "admin:servers", "tokens", "read:users", "read:servers"]}}]
c.Spawner.start_timeout = {START_S}
course_role = c.Spawner.pre_spawn_hook


def as_own_account(spawner):
    """What a login of its own gives each student: nbgrader takes the student id from the
    OS account, and here every server runs as the test's user."""
    course_role(spawner)
    if spawner.user.name != {INSTRUCTOR!r}:
        import os
        identity = os.path.join({str(work / "identity")!r}, spawner.user.name)
        os.makedirs(identity, exist_ok=True)
        with open(os.path.join(identity, "nbgrader_config.py"), "w") as fh:
            fh.write("c = get_config()\\n"
                     f"c.CourseDirectory.student_id = {{spawner.user.name!r}}\\n")
        env = dict(spawner.environment)
        env["JUPYTER_CONFIG_PATH"] = identity + os.pathsep + env["JUPYTER_CONFIG_PATH"]
        spawner.environment = env


c.Spawner.pre_spawn_hook = as_own_account
c.Spawner.args = {["--allow-root"] if os.geteuid() == 0 else []!r}  # CI runs as root
c.Spawner.http_timeout = {START_S}
''')
    return config


def _instructor_home(work: Path) -> Path:
    """The instructor's home: the course (tests/test_grading.py's toy course) cloned into
    ``accel-course`` with its tools/, hub/instructor/ and environment."""
    from tests.test_grading import _toy_course

    home = work / "home" / INSTRUCTOR
    course = _toy_course(home)
    course = course.rename(home / "accel-course")
    shutil.copy(ROOT / "tools" / "autograde.py", course / "tools")
    shutil.copytree(HUB / "instructor", course / "hub" / "instructor")
    (course / ".venv").symlink_to(Path(sys.prefix))  # `make env` there
    return course


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM to the hub (it stops the proxy and the servers), then kill what is left."""
    try:
        family = psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        family = []
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    for child in family:
        with contextlib.suppress(psutil.NoSuchProcess):
            child.kill()


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    from tools.dist import build

    work = tmp_path_factory.mktemp("hub")
    _instructor_home(work)
    dist = build(work / "student-dist")  # what the hub runs students' servers with
    exchange = work / "exchange"
    exchange.mkdir(mode=0o777)
    token = secrets.token_hex(16)
    ports = _free_ports(3)
    config = _write_config(work, ports, token)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("JUPYTER", "NBGRADER", "PYTHONPATH", "COURSE_"))}
    venv_bin = str(Path(sys.executable).parent)
    env.update(PATH=os.pathsep.join([venv_bin, env.get("PATH", "")]),
               COURSE_INSTRUCTORS=INSTRUCTOR, COURSE_STUDENT_DIST=str(dist),
               NBGRADER_EXCHANGE=str(exchange), OMP_NUM_THREADS="1")
    log = work / "jupyterhub.log"
    with log.open("w") as out:
        proc = subprocess.Popen([str(Path(venv_bin) / "jupyterhub"), "-f", str(config)],
                                cwd=work, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    h = Hub(f"http://127.0.0.1:{ports[0]}", token, log, proc)
    try:
        deadline = time.monotonic() + START_S
        while True:
            assert proc.poll() is None, f"jupyterhub exited ({proc.returncode})\n{h.tail()}"
            with contextlib.suppress(OSError, AssertionError):
                if h.api("GET", "/") is not None:
                    break
            assert time.monotonic() < deadline, f"no hub after {START_S} s\n{h.tail()}"
            time.sleep(0.5)
        yield h
    finally:
        _stop(proc)


def _start_servers(hub: Hub, users: list[str]) -> None:
    hub.api("POST", "/users", {"usernames": users})
    for user in users:
        hub.api("POST", f"/users/{user}/server")
    deadline = time.monotonic() + START_S
    waiting = set(users)
    while waiting:
        for user in sorted(waiting):
            server = hub.api("GET", f"/users/{user}").get("servers", {}).get("", {})
            if server.get("ready"):
                waiting.discard(user)
        assert time.monotonic() < deadline, f"servers not ready: {waiting}\n{hub.tail()}"
        time.sleep(0.5)
    for user in users:  # each user's own token, as their browser session would have
        hub.tokens[user] = hub.api("POST", f"/users/{user}/tokens",
                                   {"note": "the term test", "expires_in": 3600})["token"]


def _terminal(hub: Hub, user: str, command: str, timeout: float) -> tuple[int, str]:
    """Run ``command`` in a new terminal of ``user``'s server (JupyterLab's Terminal: the
    REST API makes it, its websocket types and reads); returns (exit status, output)."""
    import websocket

    name = hub.server(user, "POST", "/api/terminals")["name"]
    url = hub.url.replace("http", "ws", 1) + f"/user/{user}/terminals/websocket/{name}"
    ws = websocket.create_connection(url, timeout=timeout,
                                     header=[f"Authorization: token {hub.tokens[user]}"])
    out, done = "", re.compile(r"TERM-EXIT-(\d+)")
    try:
        ws.send(json.dumps(["stdin", f"{command}; echo TERM-EXIT-$?\r"]))
        deadline = time.monotonic() + timeout
        while not (m := done.search(out)):
            assert time.monotonic() < deadline, f"terminal: no end after {timeout} s\n{out}"
            kind, *data = json.loads(ws.recv())
            if kind == "stdout":
                out += data[0]
    finally:
        ws.close()
        hub.server(user, "DELETE", f"/api/terminals/{name}")
    return int(m.group(1)), out


def _answer(hub: Hub, student: str, code: str) -> None:
    """The student edits the fetched notebook (JupyterLab saves through the contents API)."""
    path = "/api/contents/toy/toy.ipynb"
    nb = hub.server(student, "GET", path + "?content=1&type=notebook")["content"]
    for cell in nb["cells"]:
        grade_id = cell["metadata"].get("nbgrader", {}).get("grade_id")
        if grade_id == "double":
            cell["source"] = code
        elif grade_id == "why":
            cell["source"] = "Because doubling is linear."
    hub.server(student, "PUT", path, {"type": "notebook", "format": "json", "content": nb})


def _ok(reply: object) -> object:
    assert isinstance(reply, dict) and reply.get("success"), reply
    return reply


def test_a_term_on_the_course_hub(hub):
    start = time.monotonic()
    _start_servers(hub, [INSTRUCTOR, *STUDENTS])
    course_api = "/formgrader/api/assignment/toy"
    _ok(hub.server(INSTRUCTOR, "POST", f"{course_api}/assign", {}, timeout=120))
    _ok(hub.server(INSTRUCTOR, "POST", f"{course_api}/release", {}))

    answers = {"lovelaceada": "def double(x):\n    return 2 * x",
               "turingalan": "def double(x):\n    return 2 if x == 1 else x"}  # hidden tests fail
    action = {"course_id": COURSE_ID, "assignment_id": "toy"}
    for student, code in answers.items():
        listed = hub.server(student, "POST", "/assignments/fetch", action)
        assert listed["success"] and listed["value"][0]["status"] == "fetched", listed
        _answer(hub, student, code)
        listed = hub.server(student, "POST", "/assignments/submit", action)
        assert listed["success"] and any(a["status"] == "submitted" for a in listed["value"]), \
            listed

    _ok(hub.server(INSTRUCTOR, "POST", f"{course_api}/collect", {}))
    status, out = _terminal(hub, INSTRUCTOR, "cd ~/accel-course && "
                            ".venv/bin/python -m tools.autograde toy --jobs 2", AUTOGRADE_S)
    assert status == 0 and "2 of 2 submission(s) autograded" in out, out
    scores = {s["student"]: s for s in hub.server(INSTRUCTOR, "GET",
                                                  "/formgrader/api/submissions/toy")}
    assert set(scores) == set(STUDENTS), scores  # nbgrader knew who submitted
    assert scores["lovelaceada"]["code_score"] == 2.0, scores
    assert scores["turingalan"]["code_score"] == 0.0, scores
    assert all(s["needs_manual_grade"] for s in scores.values())  # the written answer

    _ok(hub.server(INSTRUCTOR, "POST", f"{course_api}/generate_feedback", {}, timeout=120))
    _ok(hub.server(INSTRUCTOR, "POST", f"{course_api}/release_feedback", {}))
    for student in STUDENTS:
        listed = hub.server(student, "POST", "/assignments/fetch_feedback", action)
        assert listed["success"], listed
        folders = hub.server(student, "GET", "/api/contents/toy/feedback")["content"]
        assert len(folders) == 1, folders
        page = urllib.parse.quote(f"/api/contents/{folders[0]['path']}/toy.html")
        page = hub.server(student, "GET", page + "?content=1&format=text&type=file")["content"]
        from tools.grading import html_text

        text = html_text(page)
        assert "hidden tests (not shown)" in text and "secret_value" not in text
        if student == "turingalan":
            assert "double(3) is wrong" in text  # the hidden test's message, not its code
    print(f"the term on JupyterHub took {time.monotonic() - start:.1f} s after the hub started")

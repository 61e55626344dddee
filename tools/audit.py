"""Integrity audit of submissions: code that tries to fool the grader instead of answering.

    python -m tools.course audit 03_quantization [--submitted DIR] [--released DIR]

Static analysis (Python's ``ast``; IPython magics and ``!`` lines are first turned into the
Python IPython runs) of every code cell of every ``DIR/<student>/<assignment>/*.ipynb``.
Cells the student left as released are skipped, and so are cells that are not valid Python
(they cannot run: a syntax error fails that cell at autograde). A finding is one of:

* ``patches a module``    assigns to (or deletes) an attribute of an imported module or of
                          a name imported from one: ``np.isclose = ...``,
                          ``import accel_lib.checks as c; c.check_close = ...``,
                          ``check_close.__code__ = ...``, ``setattr(torch, ...)``;
* ``shadows a checker``  rebinds a name imported from the checkers (``accel_lib.checks``,
                          ``numpy.testing``, ``torch.testing``, ``isclose``/``allclose``):
                          ``check_close = lambda *a, **k: None`` (test cells re-import them,
                          so it changes no grade, but it shows intent);
* ``sys.modules``         any use of ``sys.modules`` (or ``sys.meta_path``, import hooks,
                          ``sys.settrace``, ``sys.excepthook``);
* ``builtins``            any use of ``__builtins__``; ``builtins.x = ...`` counts as above;
* ``patches IPython``     ``get_ipython()`` beyond running magics: attributes set on it, its
                          event hooks, input/AST transformers, custom exception handlers;
* ``reloads modules``     ``importlib.reload``;
* ``reads the caller``    introspection that reaches the test's own values: stack frames
                          (``sys._getframe``, ``inspect.currentframe``/``stack``/``trace``,
                          ``.f_back``, ``.f_locals``, ``.tb_frame``) and the garbage
                          collector (``gc.get_objects``, ``gc.get_referrers``...);
* ``dynamic code``        ``exec``, ``eval``, ``compile``, ``__import__``, ``ctypes``;
* ``file outside``        a path outside the submission: ``..``, an absolute or ``~`` path,
                          or a course folder (``solutions/``, ``gradebook.db``, ``autograded``,
                          ``submitted``, ``.exchange``...), in Python strings or shell commands;
                          and ``.parent``, ``os.pardir``, ``os.chdir``, ``Path.home()``,
                          ``expanduser``, which walk out of it;
* ``test cell edited``    a test cell (a locked nbgrader cell) that differs from the released
  ``test cell missing``   one, or is gone (nbgrader restores both at autograde: the edit has no
  ``points edited``       effect on the grade, but someone tried). Hidden tests are no edit.

Not everything suspicious is cheating (and not every cheat is static); the report says
where to look: student, notebook, cell index, grade_id, line and the source line.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass
from pathlib import Path

from tools.grading import normalized, visible_source


@dataclass(frozen=True)
class Finding:
    """One suspicious line of one submission."""

    student: str
    notebook: str
    cell: int
    grade_id: str | None
    line: int
    rule: str
    source: str

    def __str__(self) -> str:
        where = f"{self.student}  {self.notebook} cell {self.cell}"
        if self.grade_id:
            where += f" ({self.grade_id})"
        return f"{where} line {self.line}: {self.rule}: {self.source.strip()}"


# Attribute paths of imported modules that honest code sets: configuration knobs.
ALLOWED_SETTINGS = ("torch.backends.", "torch._dynamo.config.", "torch._inductor.config.",
                    "pandas.options.", "tqdm.tqdm.monitor_interval")
SYS_HOOKS = {"modules", "meta_path", "path_hooks", "path_importer_cache", "settrace",
             "setprofile", "excepthook", "displayhook"}
INTERNALS = {"__code__", "__globals__", "__dict__", "__builtins__", "__defaults__",
             "__kwdefaults__", "__class__", "__closure__"}
IPYTHON_MAGIC_CALLS = {"run_line_magic", "run_cell_magic", "system", "getoutput", "magic"}
CHECKER_MODULES = ("accel_lib.checks", "numpy.testing", "torch.testing", "unittest")
CHECKER_FUNCS = {"isclose", "allclose", "assert_close", "array_equal", "assert_allclose"}
DYNAMIC = {"exec", "eval", "compile", "__import__"}
# Ways to read the calling test's locals or every live object: an answer never needs them.
FRAME_ATTRS = {"f_back", "f_locals", "f_globals", "tb_frame", "gi_frame", "cr_frame"}
INTROSPECTION = {"sys._getframe", "sys._current_frames", "inspect.currentframe", "inspect.stack",
                 "inspect.trace", "inspect.getouterframes", "inspect.getinnerframes"}
WALK_OUT = {"parent", "parents", "pardir", "chdir", "home", "expanduser"}
COURSE_FOLDERS = {"solutions", "autograded", "submitted", "feedback", "gradebook.db", ".exchange",
                  "nbgrader_config.py"}
# Cell magics whose body is Python: analysed as such. Other cell magics: shell or text.
PYTHON_CELL_MAGICS = {"capture", "time", "timeit", "prun", "debug"}
SHELL_CELL_MAGICS = {"bash", "sh", "script", "system", "!"}


def _dotted(node: ast.AST) -> list[str] | None:
    """``a.b.c`` as ``["a", "b", "c"]``; None when the chain does not start at a name."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return [node.id, *reversed(parts)]
    return None


def _root(node: ast.AST) -> ast.AST:
    """The expression an attribute/subscript/call chain hangs from."""
    while True:
        if isinstance(node, ast.Attribute | ast.Subscript):
            node = node.value
        elif isinstance(node, ast.Call):
            node = node.func
        elif isinstance(node, ast.NamedExpr):
            node = node.value
        else:
            return node


def _string_template(node: ast.AST) -> str | None:
    """A str constant, or an f-string with ``\\0`` where values are interpolated."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else "\0" for v in node.values)
    return None


def _concatenation(node: ast.AST) -> str | None:
    """The value of ``"a" + "b" + f"c"``, or None when a part is not a string literal."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _concatenation(node.left), _concatenation(node.right)
        return None if left is None or right is None else left + right
    return _string_template(node)


def outside_path(text: str, shell: bool = False) -> bool:
    """Does ``text`` name a path outside the submission folder? A Python string is one path
    (``"../x"``, ``"/etc/x"``, ``"solutions/..."``); a shell command is split into words."""
    for token in text.split() if shell else [text.strip()]:
        token = token.strip("'\"")
        parts = re.split(r"[/\\]", token)
        is_path = len(parts) > 1 or shell or not any(ch.isspace() for ch in token)
        if not is_path:
            continue
        if ".." in parts or token == "~" or token.startswith("~/"):
            return True
        if re.match(r"^/[\w.~-]", token) and ("/" in token[1:] or len(token) >= 4):
            return True
        if COURSE_FOLDERS & set(parts):
            return True
    return False


class _Scanner(ast.NodeVisitor):
    """Collects (line, rule) findings in one cell, given the notebook's imported names."""

    def __init__(self, modules: dict[str, str], ipython: set[str],
                 checkers: set[str] | None = None) -> None:
        self.modules = modules  # local name -> dotted import path
        self.ipython = ipython  # names bound to get_ipython()
        self.checkers = checkers or set()  # names imported from checker modules
        self.found: list[tuple[int, str]] = []

    def flag(self, node: ast.AST, rule: str) -> None:
        self.found.append((node.lineno, rule))

    # -- what a name refers to ------------------------------------------------------
    def _imported_path(self, node: ast.AST) -> str | None:
        """Dotted path of an expression rooted in an imported name (``np.linalg`` ->
        ``numpy.linalg``); None when it is not rooted in an import."""
        root = _root(node)
        if isinstance(root, ast.Name) and root.id in self.modules:
            chain = _dotted(node) or [root.id]
            return ".".join([self.modules[root.id], *chain[1:]])
        return None

    def _is_ipython(self, node: ast.AST) -> bool:
        """Does the chain hang from ``get_ipython()`` (or a name bound to it)?"""
        while True:
            if isinstance(node, ast.Call):
                func = node.func
                if (isinstance(func, ast.Name) and func.id == "get_ipython") or (
                        isinstance(func, ast.Attribute) and func.attr == "get_ipython"):
                    return True
                node = func
            elif isinstance(node, ast.Attribute | ast.Subscript):
                node = node.value
            elif isinstance(node, ast.NamedExpr):
                node = node.value
            else:
                return isinstance(node, ast.Name) and node.id in self.ipython

    def _introspects(self, node: ast.Attribute) -> bool:
        """``sys._getframe``, ``inspect.stack``, any attribute of the ``gc`` module."""
        path = self._imported_path(node)
        return path is not None and (path in INTROSPECTION or path.startswith("gc."))

    def _is_sys(self, node: ast.AST, attrs: set[str]) -> bool:
        return (isinstance(node, ast.Attribute) and node.attr in attrs
                and isinstance(node.value, ast.Name)
                and self.modules.get(node.value.id) == "sys")

    # -- assignments -----------------------------------------------------------------
    def _check_target(self, target: ast.AST, node: ast.AST) -> None:
        if isinstance(target, ast.Name) and target.id in self.checkers:
            self.flag(node, "shadows a checker")
            return
        if isinstance(target, ast.Tuple | ast.List):
            for elt in target.elts:
                self._check_target(elt, node)
            return
        if isinstance(target, ast.Starred):
            self._check_target(target.value, node)
            return
        if not isinstance(target, ast.Attribute | ast.Subscript):
            return
        chain = target
        while isinstance(chain, ast.Attribute | ast.Subscript):
            if isinstance(chain, ast.Attribute) and chain.attr in INTERNALS:
                self.flag(node, "patches a module")
                return
            chain = chain.value
        if isinstance(target, ast.Attribute):
            if self._is_ipython(target):
                self.flag(node, "patches IPython")
                return
            path = self._imported_path(target)
            if path and not path.startswith(ALLOWED_SETTINGS):
                self.flag(node, "patches a module")

    def visit_Assign(self, node: ast.Assign) -> None:
        for target in node.targets:
            self._check_target(target, node)
        self._track_alias(node.targets, node.value)
        self.generic_visit(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        self._check_target(node.target, node)
        self.generic_visit(node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        self._check_target(node.target, node)
        self.generic_visit(node)

    def visit_Delete(self, node: ast.Delete) -> None:
        for target in node.targets:
            self._check_target(target, node)
        self.generic_visit(node)

    def visit_For(self, node: ast.For) -> None:  # for m in (np, torch): m.isclose = ...
        elts = node.iter.elts if isinstance(node.iter, ast.Tuple | ast.List) else []
        if isinstance(node.target, ast.Name) and elts and all(
                isinstance(e, ast.Name | ast.Attribute) and self._imported_path(e) for e in elts):
            self.modules.setdefault(node.target.id, "<loop over modules>")
        self.generic_visit(node)

    def _track_alias(self, targets: list[ast.AST], value: ast.AST) -> None:
        names = [t.id for t in targets if isinstance(t, ast.Name)]
        if not names:
            return
        call = value.func if isinstance(value, ast.Call) else None
        if call is not None and isinstance(call, ast.Name) and call.id == "get_ipython":
            self.ipython.update(names)
        elif isinstance(value, ast.Name | ast.Attribute) and self._imported_path(value):
            for name in names:
                self.modules[name] = self._imported_path(value) or name
        elif call is not None and (_dotted(call) or [""])[-1] in ("import_module",
                                                                   "__import__"):
            for name in names:
                self.modules[name] = "<imported module>"

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        if node.name in self.checkers:
            self.flag(node, "shadows a checker")
        self.generic_visit(node)

    visit_AsyncFunctionDef = visit_FunctionDef  # noqa: N815 (ast.NodeVisitor's naming)

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        if node.name in self.checkers:
            self.flag(node, "shadows a checker")
        self.generic_visit(node)

    # -- imports, names, attributes, calls ---------------------------------------------
    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.name.split(".")[0] == "ctypes":
                self.flag(node, "dynamic code")
        self.generic_visit(node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        for alias in node.names:
            name, path = alias.asname or alias.name, f"{node.module}.{alias.name}"
            if name in self.checkers and not _is_checker(path):
                self.flag(node, "shadows a checker")
        if node.module == "sys" and any(a.name in SYS_HOOKS for a in node.names):
            self.flag(node, "sys.modules")
        if node.module == "importlib" and any(a.name == "reload" for a in node.names):
            self.flag(node, "reloads modules")
        if node.module == "gc" or any(f"{node.module}.{a.name}" in INTROSPECTION
                                      for a in node.names):
            self.flag(node, "reads the caller")
        if (node.module or "").split(".")[0] == "ctypes":
            self.flag(node, "dynamic code")
        self.generic_visit(node)

    def visit_Name(self, node: ast.Name) -> None:
        if node.id == "__builtins__":
            self.flag(node, "builtins")
        elif node.id in DYNAMIC and node.id not in self.modules:
            self.flag(node, "dynamic code")

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if self._is_sys(node, SYS_HOOKS):
            self.flag(node, "sys.modules")
        elif node.attr == "__builtins__":
            self.flag(node, "builtins")
        elif node.attr in WALK_OUT:
            self.flag(node, "file outside")
        elif node.attr in FRAME_ATTRS or self._introspects(node):
            self.flag(node, "reads the caller")
            return
        elif node.attr == "reload" and (_dotted(node) or [""])[0] in self.modules and \
                self.modules[(_dotted(node) or [""])[0]].startswith(("importlib", "imp")):
            self.flag(node, "reloads modules")
        elif self._is_ipython(node.value) and node.attr not in IPYTHON_MAGIC_CALLS:
            self.flag(node, "patches IPython")
            return  # one finding per chain
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        name = func.id if isinstance(func, ast.Name) else None
        if name in ("setattr", "delattr") and node.args:
            obj = node.args[0]
            if self._is_ipython(obj):
                self.flag(node, "patches IPython")
            elif self._imported_path(obj) or (isinstance(obj, ast.Name) and obj.id in (
                    "builtins", "__builtins__")):
                self.flag(node, "patches a module")
        if name == "vars" and node.args and self._imported_path(node.args[0]):
            self.flag(node, "patches a module")
        if isinstance(func, ast.Attribute) and func.attr in IPYTHON_MAGIC_CALLS and \
                self._is_ipython(func.value):
            self._check_magic(node)
        self.generic_visit(node)

    def _check_magic(self, node: ast.Call) -> None:
        """``get_ipython().system('cat ../x')`` and friends: their strings are shell."""
        for arg in node.args:
            text = _string_template(arg)
            if text is not None and outside_path(text, shell=True):
                self.flag(node, "file outside")
                return

    def visit_BinOp(self, node: ast.BinOp) -> None:  # "../sol" + "utions"
        text = _concatenation(node)
        if text is not None and outside_path(text):
            self.flag(node, "file outside")
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, str) and outside_path(node.value):
            self.flag(node, "file outside")

    def visit_JoinedStr(self, node: ast.JoinedStr) -> None:
        text = _string_template(node)
        if text is not None and outside_path(text):
            self.flag(node, "file outside")
        for value in node.values:  # the interpolated expressions, not the constant parts
            if isinstance(value, ast.FormattedValue):
                self.visit(value)


def _python_of(source: str) -> str:
    """The Python IPython runs for a cell (magics and ``!`` lines turned into calls),
    line numbers kept."""
    from IPython.core.inputtransformer2 import TransformerManager

    return TransformerManager().transform_cell(source)


def _is_checker(path: str) -> bool:
    return path.startswith(CHECKER_MODULES) or path.rsplit(".", 1)[-1] in CHECKER_FUNCS


def _imports(sources: list[str]) -> list[tuple[str, str]]:
    """``(local name, dotted path)`` of every import in the cells, in order."""
    out: list[tuple[str, str]] = []
    for source in sources:
        try:
            tree = ast.parse(_python_of(source))
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    top = alias.name.split(".")[0]
                    out.append((alias.asname, alias.name) if alias.asname else (top, top))
            elif isinstance(node, ast.ImportFrom) and node.module:
                out += [(a.asname or a.name, f"{node.module}.{a.name}") for a in node.names]
    return out


def checker_names(sources: list[str]) -> set[str]:
    """Names the cells import from checker modules (``check_close``, ``isclose``...)."""
    return {name for name, path in _imports(sources) if _is_checker(path)}


def imported_names(sources: list[str]) -> dict[str, str]:
    """Every name a notebook's cells bind by ``import`` -> the dotted path it refers to."""
    names: dict[str, str] = {"sys": "sys", "builtins": "builtins"}
    names.update(_imports(sources))
    return names


def scan_cell(source: str, modules: dict[str, str], checkers: set[str] | None = None,
              ) -> list[tuple[int, str, str]]:
    """``(line, rule, source line)`` findings of one code cell; ``modules`` are the imported
    names of the notebook (:func:`imported_names`), ``checkers`` its
    :func:`checker_names`."""
    lines = source.split("\n")
    found: list[tuple[int, str]] = []
    first = lines[0].strip() if lines else ""
    magic = re.match(r"^%%\s*(\S+)", first)
    if magic and outside_path(first, shell=True):  # %%writefile ../x.py, %%bash ~/x
        found.append((1, "file outside"))
    if magic and magic.group(1) not in PYTHON_CELL_MAGICS:  # shell, or text: %%html, ...
        if magic.group(1) in SHELL_CELL_MAGICS:
            found += [(n, "file outside") for n, line in enumerate(lines[1:], 2)
                      if outside_path(line, shell=True)]
        return [(n, rule, lines[n - 1]) for n, rule in sorted(set(found))]
    offset = 0
    if magic:  # %%time, %%capture ...: the body is Python
        offset, source = 1, "\n".join(lines[1:])
    try:
        tree = ast.parse(_python_of(source))
    except SyntaxError:
        return [(n, rule, lines[n - 1]) for n, rule in sorted(set(found))]
    scanner = _Scanner(dict(modules), set(), checkers)
    scanner.visit(tree)
    found += [(n + offset, rule) for n, rule in scanner.found]
    return [(n, rule, lines[min(n, len(lines)) - 1]) for n, rule in sorted(set(found))]


def _cells(path: Path) -> list[dict]:
    cells = json.loads(path.read_text())["cells"]
    for cell in cells:
        if isinstance(cell.get("source"), list):
            cell["source"] = "".join(cell["source"])
    return cells


def _meta(cell: dict) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {}) or {}


def audit_notebook(path: Path, released: Path | None, student: str = "") -> list[Finding]:
    """Findings of one submitted notebook; ``released`` is the notebook as students got
    it (test cells are compared with it, and cells left as released are skipped)."""
    cells = _cells(path)
    released_cells = _cells(released) if released and released.exists() else []
    tests = {_meta(c)["grade_id"]: c for c in released_cells
             if _meta(c).get("locked") and _meta(c).get("grade_id")}
    untouched = {normalized(c["source"]) for c in released_cells if c["cell_type"] == "code"}
    code = [c["source"] for c in cells if c["cell_type"] == "code"]
    modules, checkers = imported_names(code), checker_names(code)
    findings: list[Finding] = []

    def add(index: int, grade_id: str | None, line: int, rule: str, text: str) -> None:
        findings.append(Finding(student, path.name, index, grade_id, line, rule, text))

    seen: set[str] = set()
    for index, cell in enumerate(cells):
        grade_id = _meta(cell).get("grade_id")
        source = cell["source"]
        if grade_id in tests:
            seen.add(grade_id)
            want = tests[grade_id]
            if normalized(visible_source(source)) != normalized(want["source"]):
                line = _first_difference(visible_source(source), want["source"])
                add(index, grade_id, line, "test cell edited",
                    visible_source(source).split("\n")[line - 1] if source else "")
            points, wanted = _meta(cell).get("points"), _meta(want).get("points")
            if points != wanted:
                add(index, grade_id, 0, "points edited", f"points {wanted} -> {points}")
            continue  # nbgrader runs the instructor's version of this cell
        if cell["cell_type"] != "code" or normalized(source) in untouched:
            continue
        for line, rule, text in scan_cell(source, modules, checkers):
            add(index, grade_id, line, rule, text)
    for grade_id in tests.keys() - seen:
        add(-1, grade_id, 0, "test cell missing", "(deleted, or its nbgrader metadata removed)")
    return findings


def _first_difference(a: str, b: str) -> int:
    la, lb = normalized(a).split("\n"), normalized(b).split("\n")
    for number, (x, y) in enumerate(zip(la, lb, strict=False), 1):
        if x != y:
            return number
    return min(len(la), len(lb)) + 1 if len(la) != len(lb) else 1


def audit_submissions(assignment: str, submitted: Path, released: Path) -> list[Finding]:
    """Findings of every ``submitted/<student>/<assignment>/*.ipynb``."""
    findings: list[Finding] = []
    for folder in sorted(submitted.glob(f"*/{assignment}")):
        for path in sorted(folder.glob("*.ipynb")):
            findings += audit_notebook(path, released / assignment / path.name,
                                       student=folder.parent.name)
    return findings


def print_report(findings: list[Finding]) -> None:
    """One line per finding, grouped by student; a summary line at the end."""
    for finding in findings:
        print(finding)
    students = sorted({f.student for f in findings})
    print(f"{len(findings)} finding(s) in {len(students)} submission(s)"
          + (f": {', '.join(students)}" if students else ""))

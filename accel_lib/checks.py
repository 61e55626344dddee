"""Assertions for exercises: they say what was expected, what came, and where they differ.

The same module is the grader's defence against submissions that switch the tests off.
nbgrader runs a notebook's tests in the learner's own kernel, after the learner's code, so
a submission can patch whatever the tests will use. A hidden test cell therefore starts
with ::

    import sys; sys.modules.pop("accel_lib.checks", None)
    from accel_lib.checks import check_close, check_equal, forbid, fresh

which executes this file again from its source into a brand-new module: checkers that a
submission cannot have patched. Then the cell imports what it uses itself (``import torch``,
``numpy as np``), takes its reference functions from ``fresh("accel_lib....")`` (the
library's source executed again into a module of its own, not the one the notebook
imported), computes the expected values, and runs the learner's functions inside
``with forbid(reference):`` so that an answer that merely calls the library's own
implementation of the exercise fails.

What this defends against (``tests/test_integrity.py`` proves it on every assignment):

* patching or replacing anything in ``accel_lib.checks`` (the checkers, their helpers) or
  in ``sys.modules["accel_lib.checks"]``, and the reference functions in ``accel_lib``;
* patching numpy and torch: ``np.isclose``, ``np.allclose``, ``torch.allclose``,
  ``torch.equal``, ``torch.testing.assert_close``, any ``torch.Tensor`` method or
  ``__torch_function__``, a torch function mode left active. The checkers use none of
  these: every value is read into plain Python data by the C code of its built-in type
  (``list``, ``float``, ``numpy.ndarray.tolist``, ``torch._C.TensorBase.tolist`` with torch
  functions disabled; these types cannot be changed from Python) and compared with plain
  Python arithmetic. An active torch dispatch mode makes the checkers refuse;
* answers returning objects that claim to equal anything (``__eq__`` always true,
  ``__float__`` or ``tolist`` returning what the test wants): only numbers, strings,
  lists, tuples, dicts, numpy arrays, tensors and other built-in (C) types are accepted,
  read as above, never through a method the submission defined;
* rebinding the notebook's names (``Q``, ``np``, ``torch``, ``check_close``): test cells
  import what they use;
* an answer that calls the reference (``forbid``): by any name or alias, through another
  library function, a copy of the function object or its original ``__code__``.

What it does not defend against (an audit of the submission's source can flag these):

* a submission that changes Python itself: builtins, the standard library (``sys``,
  ``gc``, ``importlib``), the import system (``sys.modules``, ``sys.path``,
  ``sys.meta_path``, ``accel_lib.__path__``), ``sys.setprofile`` inside an answer, or the
  library's files on disk (a rewritten ``checks.py``);
* test data: a submission that patches the functions tests build their data with
  (``torch.randn``, ``torch.tensor``, ``np.random.default_rng``, ``torch.Tensor.abs``)
  changes the data and the values computed from it; expected values written as Python
  literals still catch a wrong answer, those built with torch or computed by a reference
  on that data can be fooled. So can a reference through the helpers it imports from
  other ``accel_lib`` modules (``fresh`` re-reads only the module that defines it);
* an answer that reads the expected values from the test itself (walking the caller's
  frames, ``gc``), or one that copies the library's source into the notebook;
* tensor subclasses with ``__torch_dispatch__`` run their own code when read.
"""

from __future__ import annotations

import gc
import os
import sys
from typing import Any

__all__ = ["check_close", "check_equal", "check_shape", "forbid", "fresh"]

# Reading a type through `type`'s own descriptors, never through attributes a class (or
# its metaclass) can override. C ("static") types cannot be changed from Python at all.
_HEAPTYPE = 1 << 9
_mro = type.__dict__["__mro__"].__get__
_flags = type.__dict__["__flags__"].__get__
_type_dict = type.__dict__["__dict__"].__get__
_type_module = type.__dict__["__module__"].__get__
_type_name = type.__dict__["__qualname__"].__get__
_FunctionType = type(lambda: None)
_BuiltinType = type(len)


def _c_types(t: type) -> list[type]:
    """The C types among ``t`` and its bases: their methods are what Python cannot patch."""
    return [b for b in _mro(t) if not _flags(b) & _HEAPTYPE]


def _qualified(t: type) -> str:
    return f"{_type_module(t)}.{_type_name(t)}"


def _c_method(c_types: list[type], name: str) -> Any:
    for b in c_types:
        d = _type_dict(b)
        if name in d:
            return d[name]
    return None


def _torch_c(name: str, *, kind: type) -> Any:
    """``torch._C.<name>``, checked to be the C object of that name (not a replacement)."""
    obj = getattr(sys.modules["torch._C"], name, None)
    if kind is type:
        genuine = (type(obj) is type and not _flags(obj) & _HEAPTYPE
                   and _qualified(obj) == f"torch._C.{name}")
    else:
        genuine = type(obj) is kind and obj.__name__ == name
    if not genuine:
        raise AssertionError(f"torch._C.{name} was replaced in this kernel: grading refused")
    return obj


def _tensor_list(value: Any, c_types: list[type]) -> Any:
    """A tensor's values by ``torch._C.TensorBase.tolist``, with torch functions disabled."""
    if _torch_c("_len_torch_dispatch_stack", kind=_BuiltinType)():
        raise AssertionError("a torch dispatch mode is active in this kernel: grading refused")
    with _torch_c("DisableTorchFunction", kind=type)():
        return _c_method(c_types, "tolist")(value)


def _plain(value: Any) -> Any:
    """``value`` as plain Python data, read by the C code of its built-in type.

    Numbers, strings and None come back as exact ``bool``/``int``/``float``/``complex``/``str``;
    lists, tuples and dicts (and their subclasses) as exact lists, tuples and dicts of plain
    data; numpy arrays, numpy scalars and tensors as (nested lists of) Python numbers; any
    other object of a C type (``torch.dtype``, ``torch.device``) as itself. Objects of
    classes written in Python raise TypeError: no method a submission wrote ever runs.
    """
    c_types = _c_types(type(value))
    names = [_qualified(b) for b in c_types]
    if "torch._C.TensorBase" in names:
        return _plain(_tensor_list(value, c_types))
    if names[0].startswith("numpy.") and _c_method(c_types, "tolist") is not None:
        return _plain(_c_method(c_types, "tolist")(value))
    for name in names:
        if name == "builtins.bool":
            return value  # bool cannot be subclassed
        if name == "builtins.int":
            return int.__int__(value)
        if name == "builtins.float":
            return float.__float__(value)
        if name == "builtins.complex":
            return complex.__complex__(value)
        if name == "builtins.str":
            return str.__str__(value)
        if name == "builtins.NoneType":
            return None
        if name == "builtins.list":
            return [_plain(v) for v in list.__iter__(value)]
        if name == "builtins.tuple":
            return tuple([_plain(v) for v in tuple.__iter__(value)])
        if name == "builtins.dict":
            return {_plain(k): _plain(v) for k, v in dict.items(value)}
    if names[0] != "builtins.object":
        return value  # an object of a C type: its == is C code
    raise TypeError(_type_name(type(value)))  # the class that is not plain data


def _numbers(plain: Any) -> tuple[tuple[int, ...], list[float]]:
    """(shape, flat values) of plain nested numbers; TypeError/ValueError otherwise."""
    t = type(plain)
    if t is bool or t is int or t is float:
        return (), [float(plain)]
    if t is list or t is tuple:
        parts = [_numbers(v) for v in plain]
        shapes = {shape for shape, _ in parts}
        if len(shapes) > 1:
            raise ValueError("ragged nesting")
        inner = shapes.pop() if shapes else ()
        return (len(parts), *inner), [x for _, flat in parts for x in flat]
    raise TypeError(t.__name__)


def _what(value: Any, err: Exception) -> str:
    """What a value that is not plain data is, for a message: ``_Fake``, ``list holding str``."""
    kind = _type_name(type(value))
    inner = err.args[0] if type(err) is TypeError and err.args else None
    if type(err) is ValueError:
        return f"a ragged {kind}"
    return kind if inner in (None, kind) else f"{kind} holding {inner}"


def _read(value: Any, name: str, role: str) -> tuple[tuple[int, ...], list[float]]:
    try:
        return _numbers(_plain(value))
    except (TypeError, ValueError, RuntimeError, OverflowError) as err:  # RecursionError too
        what = _what(value, err)
        raise AssertionError(f"{name}: expected a number or array, got {what}"
                             if role == "actual" else
                             f"{name}: the expected value is not a number or array ({what})"
                             ) from err


def _close(a: float, e: float, rtol: float, atol: float) -> bool:
    """numpy.isclose(a, e, rtol, atol, equal_nan=True) on two Python floats."""
    if a == e:  # equal, infinities included
        return True
    if a != a or e != e:  # NaN
        return a != a and e != e
    return abs(a - e) <= atol + rtol * abs(e)


def _index(flat: int, shape: tuple[int, ...]) -> tuple[int, ...]:
    out = []
    for size in reversed(shape):
        flat, i = divmod(flat, size)
        out.append(i)
    return tuple(reversed(out))


def check_shape(actual: Any, expected_shape: tuple[int, ...], name: str) -> None:
    """Assert ``actual`` has ``expected_shape``."""
    expected_shape = tuple(_plain(expected_shape))
    try:
        shape = _shape(_plain(actual))
    except (TypeError, ValueError, RuntimeError, OverflowError) as err:
        raise AssertionError(f"{name}: expected an array of shape {expected_shape}, got "
                             f"{_what(actual, err)}") from err
    if shape != expected_shape:
        raise AssertionError(f"{name}: expected shape {expected_shape}, got {shape}")


def _shape(plain: Any) -> tuple[int, ...]:
    if type(plain) is not list and type(plain) is not tuple:
        return ()
    shapes = {_shape(v) for v in plain}
    if len(shapes) > 1:
        raise ValueError("ragged nesting")
    return (len(plain), *(shapes.pop() if shapes else ()))


def check_close(actual: Any, expected: Any, name: str, *, rtol: float = 1e-5,
                atol: float = 1e-8) -> None:
    """Assert two numbers or arrays agree within ``atol + rtol * |expected|``.

    The message names the check, the expected and actual values (or the worst element).
    """
    if actual is None:
        raise AssertionError(f"{name}: got None; did the function forget to `return`?")
    a_shape, a = _read(actual, name, "actual")
    e_shape, e = _read(expected, name, "expected")
    if a_shape != e_shape:
        raise AssertionError(f"{name}: expected shape {e_shape}, got {a_shape}")
    if any(x != x for x in a) and not any(x != x for x in e):
        raise AssertionError(f"{name}: result contains NaN")
    bad = [i for i in range(len(a)) if not _close(a[i], e[i], rtol, atol)]
    if bad:
        i = bad[0]
        if not a_shape:
            raise AssertionError(f"{name}: expected {e[i]:.6g}, got {a[i]:.6g}")
        raise AssertionError(
            f"{name}: {len(bad)} of {len(a)} values differ; first at index "
            f"{_index(i, a_shape)}: expected {e[i]:.6g}, got {a[i]:.6g}")


def check_equal(actual: Any, expected: Any, name: str) -> None:
    """Assert ``actual == expected`` (exact), with a message naming both.

    Tensors and arrays compare as (nested) lists of their values.
    """
    e = _plain(expected)
    try:
        a = _plain(actual)
    except (TypeError, ValueError, RuntimeError, OverflowError) as err:
        raise AssertionError(f"{name}: expected {e!r}, got {_what(actual, err)}") from None
    if not a == e:
        if len(repr(e)) + len(repr(a)) <= 2 * _SHORT:
            raise AssertionError(f"{name}: expected {e!r}, got {a!r}")
        raise AssertionError(f"{name}: {_difference(a, e)}")


_SHORT = 120  # characters of a value a message quotes whole; longer ones are pointed into


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _SHORT else text[:_SHORT - 4] + " ..."


def _leaves(plain: Any) -> list[Any] | None:
    """The flat values of a nested list of scalars (None if it is not one)."""
    if type(plain) is not list and type(plain) is not tuple:
        return [plain]
    out: list[Any] = []
    for v in plain:
        inner = _leaves(v)
        if inner is None or (type(v) is dict):
            return None
        out += inner
    return out


def _difference(a: Any, e: Any, where: str = "") -> str:
    """Where two unequal plain values first differ, in a line: key or index, expected vs got."""
    at = f" at {where}" if where else ""
    if type(a) is dict and type(e) is dict:
        if sorted(map(repr, a)) != sorted(map(repr, e)):
            keys_e, keys_a = _short(sorted(e, key=repr)), _short(sorted(a, key=repr))
            return f"expected keys {keys_e}, got {keys_a}{at}"
        for k in e:
            if not a[k] == e[k]:
                return _difference(a[k], e[k], f"{where}[{k!r}]")
    seq = (list, tuple)
    if type(a) in seq and type(e) in seq:
        try:
            a_shape, e_shape = _shape(a), _shape(e)
        except ValueError:
            a_shape = e_shape = None
        if a_shape is not None and a_shape != e_shape:
            return f"expected shape {e_shape}, got {a_shape}{at}"
        flat_a, flat_e = _leaves(a), _leaves(e)
        if a_shape is not None and flat_a is not None and flat_e is not None:
            bad = [i for i, (x, y) in enumerate(zip(flat_a, flat_e, strict=True)) if not x == y]
            i = bad[0]
            return (f"{len(bad)} of {len(flat_e)} values differ{at}; first at index "
                    f"{_index(i, e_shape)}: expected {flat_e[i]!r}, got {flat_a[i]!r}")
        if len(a) != len(e):
            return f"expected {len(e)} items, got {len(a)}{at}"
        for i, (x, y) in enumerate(zip(a, e, strict=True)):
            if not x == y:
                return _difference(x, y, f"{where}[{i}]")
    return f"expected {_short(e)}, got {_short(a)}{at}"


# --- the grader's references -------------------------------------------------------------


_LIBRARY = os.path.dirname(os.path.abspath(__file__))  # accel_lib/, where this file is


def _find_spec(name: str, path: list[str]) -> Any:
    for finder in sys.meta_path:  # the import system, without sys.modules
        find = getattr(finder, "find_spec", None)
        spec = find(name, path) if find is not None else None
        if spec is not None:
            return spec
    raise ModuleNotFoundError(f"no module named {name!r}")


def fresh(name: str) -> Any:
    """A new copy of module ``name`` (e.g. ``"accel_lib.roofline"``), executed from its source.

    The source is the file next to this one (the library these checkers came from, never a
    look-alike package the submission wrote into its working directory), and nothing the
    notebook did to the imported module reaches the copy. It stays out of ``sys.modules``
    (but for the time it runs); its imports of other modules still come from there, so take
    a reference from the module that defines it (``accel_lib.quantization.ops``, not
    ``accel_lib.quantization``).
    """
    from importlib import import_module
    from importlib.util import module_from_spec

    parts = name.split(".")
    if parts[0] != "accel_lib" or len(parts) < 2:
        raise ValueError(f"fresh() copies a module of accel_lib, got {name!r}")
    import_module(name)  # its package and what it imports are loaded first, as usual
    spec, path = None, [_LIBRARY]
    for i in range(1, len(parts)):
        spec = _find_spec(".".join(parts[:i + 1]), path)
        path = spec.submodule_search_locations
    module = module_from_spec(spec)
    missing = object()
    previous = sys.modules.get(name, missing)
    sys.modules[name] = module  # while it runs, as an import would (dataclasses look it up)
    try:
        spec.loader.exec_module(module)
    finally:
        if previous is missing:
            del sys.modules[name]
        else:
            sys.modules[name] = previous
    return module


def _where(code: Any) -> tuple[str, str, int]:
    """Where a function was compiled from: the same for every copy of it."""
    return code.co_filename, code.co_qualname, code.co_firstlineno


def _label(fn: Any) -> str:
    """The qualified name of a function, for the message."""
    if type(fn) is not _FunctionType:  # a built-in: torch.softmax, not its C class's name
        return f"{getattr(fn, '__module__', None) or 'torch'}.{fn.__name__}"
    return f"{fn.__module__}.{fn.__qualname__}"


def _forbidden_message(qualified: str) -> str:
    return (f"write it yourself: this exercise asks for your own implementation, "
            f"not a call to {qualified}")


def _raiser(qualified: str, n_free: int) -> Any:
    """A code object that raises the teaching error (with ``n_free`` free variables)."""
    message = _forbidden_message(qualified)
    names = [f"_v{i}" for i in range(n_free)]
    src = ("def _outer():\n" + "".join(f"    {v} = None\n" for v in names)
           + "    def _forbidden(*args, **kwargs):\n"
           + (f"        {', '.join(names)}\n" if names else "")
           + f"        raise AssertionError({message!r})\n    return _forbidden\n")
    namespace: dict[str, Any] = {}
    exec(compile(src, f"<forbidden {qualified}>", "exec"), namespace)
    return namespace["_outer"]().__code__


class forbid:  # noqa: N801 (a context manager used like a function)
    """``with forbid(reference, ...):`` fails if the block runs any of the references.

    A hidden test computes its expected values first, then calls the learner's function
    inside the block. Python functions are matched by where they were compiled from, so
    every copy counts: the module's, a name the learner imported (``from accel_lib... import
    x as ref``), a fresh copy, a function rebuilt from the original ``__code__``. While the
    block runs, each copy's ``__code__`` raises an AssertionError that tells the learner to
    write it themselves (restored afterwards), and a profiler records any call of the
    original code, so an answer that catches the error still fails when the block ends.
    Built-in functions (``torch.softmax``) are matched by name, however they are called.

    Forbid only the exercise's own reference, never a function that the library functions
    the learner may use call internally.
    """

    def __init__(self, *references: Any) -> None:
        self._functions: dict[tuple[str, str, int], str] = {}  # where compiled -> name
        self._builtins: dict[str, str] = {}
        for ref in references:
            code = getattr(ref, "__code__", None)
            if type(ref) is _FunctionType:
                self._functions[_where(code)] = _label(ref)
            elif type(ref) is _BuiltinType or hasattr(ref, "__objclass__"):
                self._builtins[ref.__name__] = _label(ref)
            else:
                raise TypeError(f"forbid() takes functions, got {type(ref).__name__}")
        self._swapped: list[tuple[Any, Any]] = []
        self._calls: list[str] = []

    def _profile(self, frame: Any, event: str, arg: Any) -> None:
        if event == "call":
            hit = self._functions.get(_where(frame.f_code))
        elif event == "c_call":
            hit = self._builtins.get(getattr(arg, "__name__", None))
        else:
            return
        if hit is not None and hit not in self._calls:
            self._calls.append(hit)

    def __enter__(self) -> forbid:
        raisers = {}
        for obj in gc.get_objects():
            if type(obj) is _FunctionType:
                label = self._functions.get(_where(obj.__code__))
                if label is not None:
                    code = _raiser(label, len(obj.__code__.co_freevars))
                    raisers[_where(code)] = label
                    self._swapped.append((obj, obj.__code__))
                    obj.__code__ = code
        self._functions.update(raisers)
        self._previous = sys.getprofile()
        sys.setprofile(self._profile)
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        sys.setprofile(self._previous)
        for fn, code in self._swapped:
            fn.__code__ = code
        self._swapped.clear()
        if self._calls and exc_type is None:
            raise AssertionError(_forbidden_message(self._calls[0]))
        return False

import numpy as np
import pytest
import torch

from accel_lib.checks import check_close, check_equal, check_shape


def test_check_close_passes_within_tolerance():
    check_close(1.0 + 1e-9, 1.0, "x")
    check_close(torch.ones(3), np.ones(3), "vec")


def test_check_close_messages_teach():
    with pytest.raises(AssertionError, match=r"speed: expected 2, got 3"):
        check_close(3, 2, "speed")
    with pytest.raises(AssertionError, match=r"1 of 3 values differ; first at index \(1,\)"):
        check_close([1, 5, 3], [1, 2, 3], "v")
    with pytest.raises(AssertionError, match="forget to `return`"):
        check_close(None, 1, "f()")
    with pytest.raises(AssertionError, match="expected shape"):
        check_close([1, 2], [1, 2, 3], "s")
    with pytest.raises(AssertionError, match="NaN"):
        check_close(float("nan"), 1.0, "n")


def test_check_equal_and_shape():
    check_equal("memory", "memory", "bound")
    with pytest.raises(AssertionError, match="expected 'compute', got 'memory'"):
        check_equal("memory", "compute", "bound")
    check_shape(torch.zeros(2, 3), (2, 3), "t")
    with pytest.raises(AssertionError, match=r"expected shape \(3,\)"):
        check_shape([1, 2], (3,), "t")



def _message(actual, expected) -> str:
    with pytest.raises(AssertionError) as err:
        check_equal(actual, expected, "masks")
    return str(err.value)


def test_check_equal_points_into_large_values_instead_of_dumping_them():
    big = {"conv": torch.ones(8, 3, 3, 3, dtype=torch.bool),
           "fc": torch.ones(10, 64, dtype=torch.bool)}
    wrong = {"conv": big["conv"].clone(), "fc": big["fc"].clone()}
    wrong["fc"][2, 5] = False
    msg = _message(wrong, big)
    assert msg == ("masks: 1 of 640 values differ at ['fc']; first at index (2, 5): "
                   "expected True, got False")
    assert "expected keys ['conv', 'fc'], got ['conv']" in _message({"conv": big["conv"]}, big)
    assert _message(torch.zeros(50, 3), torch.zeros(3, 50)).endswith(
        "expected shape (3, 50), got (50, 3)")
    long_text = _message("a" * 1000, "b" * 1000)
    assert len(long_text) < 300 and long_text.count(" ...") == 2
    assert _message([[1, 2], [3]] * 40, [[1, 2], [4]] * 40) == (
        "masks: 1 of 1 values differ at [1]; first at index (0,): expected 4, got 3")
    # small values are still quoted whole
    assert _message([1, 2], [1, 3]) == "masks: expected [1, 3], got [1, 2]"

# --- what a submission cannot switch off (accel_lib.checks' docstring) ----------------------


class _EqualsAnything:
    def __eq__(self, other):
        return True

    def __ne__(self, other):
        return False

    def __float__(self):
        return 2.0

    def tolist(self):
        return [1.0, 2.0]


def test_objects_claiming_to_equal_anything_are_rejected():
    with pytest.raises(AssertionError, match="expected 64, got _EqualsAnything"):
        check_equal(_EqualsAnything(), 64, "zero point")
    with pytest.raises(AssertionError, match="expected a number or array, got _EqualsAnything"):
        check_close(_EqualsAnything(), 2.0, "scale")
    with pytest.raises(AssertionError, match=r"got list holding _EqualsAnything"):
        check_equal([_EqualsAnything()], ["a"], "names")

    class Sneaky(float):  # a float subclass is read as the float it holds
        def __eq__(self, other):
            return True

    with pytest.raises(AssertionError, match="expected 2, got 3"):
        check_close(Sneaky(3.0), 2.0, "x")
    with pytest.raises(AssertionError, match="expected 2.0, got 3.0"):
        check_equal(Sneaky(3.0), 2.0, "x")


def test_patched_numpy_and_torch_do_not_reach_the_checkers(monkeypatch):
    monkeypatch.setattr(np, "isclose", lambda *a, **k: True)
    monkeypatch.setattr(np, "allclose", lambda *a, **k: True)
    monkeypatch.setattr(np, "asarray", lambda *a, **k: np.zeros(2))
    monkeypatch.setattr(torch, "allclose", lambda *a, **k: True)
    monkeypatch.setattr(torch.Tensor, "tolist", lambda self: [0.0])
    monkeypatch.setattr(torch.Tensor, "numpy", lambda self, **k: np.zeros(2))
    monkeypatch.setattr(torch.Tensor, "__eq__", lambda self, other: True)
    with pytest.raises(AssertionError, match=r"1 of 2 values differ; first at index \(1,\)"):
        check_close(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 3.0]), "t")
    with pytest.raises(AssertionError, match=r"expected \[1, 3\], got \[1, 2\]"):
        check_equal(torch.tensor([1, 2]), torch.tensor([1, 3]), "t")
    check_close(torch.tensor([1.0, 2.0], requires_grad=True), np.array([1.0, 2.0]), "equal")
    check_equal(torch.tensor([True]).dtype, torch.bool, "dtype")


def test_torch_function_overrides_and_modes_do_not_reach_the_checkers(monkeypatch):
    from torch.overrides import TorchFunctionMode
    from torch.utils._python_dispatch import TorchDispatchMode

    def always_equal(cls, func, types, args=(), kwargs=None):
        return [1.0, 3.0]

    class Sub(torch.Tensor):
        __torch_function__ = classmethod(always_equal)

    class Mode(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            return [1.0, 3.0]

    sub = torch.Tensor._make_subclass(Sub, torch.tensor([1.0, 2.0]))
    with pytest.raises(AssertionError, match="1 of 2 values differ"):
        check_close(sub, [1.0, 3.0], "subclass")
    t = torch.tensor([1.0, 2.0])
    with Mode(), pytest.raises(AssertionError, match="1 of 2 values differ"):
        check_close(t, [1.0, 3.0], "mode")
    class Dispatch(TorchDispatchMode):  # could answer any aten op, reading a tensor's too
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            return func(*args, **(kwargs or {}))

    with Dispatch(), pytest.raises(AssertionError, match="dispatch mode is active"):
        check_close(t, [1.0, 2.0], "dispatch")


def _fresh_checkers(monkeypatch):
    """What a hidden test cell does: re-import accel_lib.checks from its source."""
    import sys

    import accel_lib

    monkeypatch.setattr(accel_lib, "checks", sys.modules["accel_lib.checks"])
    monkeypatch.delitem(sys.modules, "accel_lib.checks")
    from accel_lib.checks import check_close as fresh_close
    from accel_lib.checks import forbid as fresh_forbid

    return fresh_close, fresh_forbid


def test_a_patched_checks_module_is_replaced_by_a_fresh_one(monkeypatch):
    import accel_lib.checks as patched

    for name in ("check_close", "check_equal", "_plain", "_close", "forbid"):
        monkeypatch.setattr(patched, name, lambda *a, **k: None)
    fresh_close, fresh_forbid = _fresh_checkers(monkeypatch)
    assert fresh_close is not patched.check_close
    with pytest.raises(AssertionError, match="expected 2, got 3"):
        fresh_close(3.0, 2.0, "x")
    assert isinstance(fresh_forbid(_reference), fresh_forbid)


def test_fresh_modules_ignore_what_the_notebook_patched(monkeypatch):
    import sys

    from accel_lib import roofline
    from accel_lib.checks import fresh

    monkeypatch.setattr(roofline, "matmul_intensity", lambda *a: 0.0)
    copy = fresh("accel_lib.roofline")
    assert copy is not roofline and sys.modules["accel_lib.roofline"] is roofline
    assert copy.matmul_intensity(600, 600, 600) == 100.0


def _reference():
    from accel_lib.checks import fresh

    return fresh("accel_lib.roofline").matmul_intensity


def test_forbid_fails_an_answer_that_calls_the_reference():
    from accel_lib.checks import forbid
    from accel_lib.roofline import matmul_intensity as alias

    reference = _reference()
    expected = reference(600, 600, 600)  # expected values first, then the learner's code

    def mine(m, n, k):  # the learner's own code passes
        return 2 * m * n * k / (4 * (m * k + k * n + m * n))

    def calls_it(m, n, k):
        return alias(m, n, k)

    def swallows(m, n, k):
        try:
            return alias(m, n, k)
        except AssertionError:
            return mine(m, n, k)

    def rebuilds(m, n, k, code=alias.__code__):
        return type(alias)(code, alias.__globals__)(m, n, k, 4)

    with forbid(reference):
        check_close(mine(600, 600, 600), expected, "own code")
    for answer in (calls_it, swallows, rebuilds):
        with pytest.raises(AssertionError, match=r"write it yourself: .* not a call to "
                                                 r"accel_lib\.roofline\.matmul_intensity"):
            with forbid(reference):
                answer(600, 600, 600)
    assert alias(600, 600, 600) == 100.0, "the reference works again after the block"


def test_forbid_catches_builtins_however_they_are_called():
    import torch.nn.functional as F

    from accel_lib.checks import forbid

    x = torch.randn(3)
    expected = F.softmax(x, 0)
    for call in (lambda: F.softmax(x, 0), lambda: x.softmax(0), lambda: torch.softmax(x, 0)):
        with pytest.raises(AssertionError, match=r"not a call to torch\.softmax"):
            with forbid(torch.softmax):
                call()
    with forbid(torch.softmax):
        e = x.exp()
        check_close(e / e.sum(), expected, "exp / sum is allowed")


def test_fresh_reads_the_library_next_to_the_checkers(tmp_path, monkeypatch):
    fake = tmp_path / "accel_lib"  # a look-alike a submission could write into its folder
    fake.mkdir()
    (fake / "__init__.py").write_text("")
    (fake / "roofline.py").write_text("def matmul_intensity(*args):\n    return 0.0\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    from accel_lib.checks import fresh

    assert fresh("accel_lib.roofline").matmul_intensity(600, 600, 600) == 100.0
    with pytest.raises(ValueError, match="a module of accel_lib"):
        fresh("numpy")

"""The Pareto front on hand-made points: dominance, ties, duplicates, bad input."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402

from accel_lib.capstone import dominates, pareto_front, pareto_table, plot_pareto  # noqa: E402
from accel_lib.capstone.pareto import objective_values  # noqa: E402


def P(name, acc, lat, size):  # noqa: N802
    return {"name": name, "accuracy": acc, "latency_bs1_ms": lat, "size_bytes": size}


def test_dominates_needs_strictly_better_once():
    a, b = P("a", 0.9, 1.0, 100), P("b", 0.8, 2.0, 200)
    assert dominates(a, b) and not dominates(b, a)
    assert not dominates(a, dict(a))  # equal points dominate nothing
    assert dominates(P("t", 0.9, 1.0, 99), a)  # tie in two, better in one


def test_objective_values_flip_lower_is_better():
    assert objective_values(P("a", 0.9, 2.0, 100)) == (0.9, -2.0, -100.0)


def test_front_hand_made():
    pts = [P("base", 0.98, 1.0, 1000), P("small", 0.97, 1.2, 100), P("fast", 0.96, 0.5, 500),
           P("bad", 0.95, 1.5, 1200), P("worse-than-small", 0.97, 1.3, 100)]
    assert pareto_front(pts) == [0, 1, 2]


def test_duplicates_and_ties_are_kept():
    pts = [P("a", 0.9, 1.0, 100), P("a2", 0.9, 1.0, 100), P("tie-acc", 0.9, 0.8, 200),
           P("dominated", 0.9, 1.0, 101)]
    # the duplicates neither dominate each other; tie-acc trades latency for size
    assert pareto_front(pts) == [0, 1, 2]


def test_single_objective_and_order_independence():
    pts = [P("a", 0.9, 1.0, 100), P("b", 0.95, 5.0, 900), P("c", 0.95, 5.0, 900)]
    assert pareto_front(pts, {"accuracy": 1}) == [1, 2]
    assert sorted(pareto_front(pts[::-1])) == [0, 1, 2]
    assert pareto_front([]) == []


def test_attributes_work_like_keys():
    class R:
        def __init__(self, a, lat, s):
            self.accuracy, self.latency_bs1_ms, self.size_bytes = a, lat, s
    assert pareto_front([R(0.9, 1, 10), R(0.8, 2, 20)]) == [0]


def test_bad_input():
    with pytest.raises(ValueError, match="accuracy"):
        pareto_front([{"latency_bs1_ms": 1, "size_bytes": 1}])
    with pytest.raises(ValueError, match="latency_bs1_ms"):
        pareto_front([P("x", 0.9, None, 1)])
    with pytest.raises(ValueError, match=r"\+1"):
        pareto_front([P("x", 0.9, 1, 1)], {"accuracy": 2})
    with pytest.raises(TypeError, match="points"):
        pareto_front("abc")


def test_table_and_plot():
    pts = [P("a", 0.9, 1.0, 100), P("b", 0.8, 2.0, 200)]
    table = pareto_table(pts)
    assert "| a |" in table and "yes" in table.splitlines()[2] and "yes" not in \
        table.splitlines()[3]
    fig = plot_pareto(pts, title="t")
    assert len(fig.axes) == 2
    import matplotlib.pyplot as plt
    plt.close(fig)


def test_plot_also_draws_gpu_latency_for_the_points_that_have_it():
    import matplotlib.pyplot as plt

    pts = [P("a", 0.9, 1.0, 100) | {"latency_gpu_bs1_ms": 0.2},
           P("b", 0.8, 2.0, 200) | {"latency_gpu_bs1_ms": None},  # e.g. an ONNX Runtime model
           P("c", 0.85, 0.5, 300) | {"latency_gpu_bs1_ms": 0.1}]
    fig = plot_pareto(pts, also=["latency_gpu_bs1_ms"])
    assert len(fig.axes) == 3
    gpu_ax = fig.axes[2]
    assert gpu_ax.get_xlabel() == "latency_gpu_bs1_ms"
    xs = sorted(float(c.get_offsets()[0][0]) for c in gpu_ax.collections)
    assert xs == [0.1, 0.2]  # b has no GPU latency: not drawn there
    # each panel's staircase: a and c trade off on the GPU too (c faster, a more accurate)
    assert len(gpu_ax.lines) == 1 and sorted(gpu_ax.lines[0].get_xdata()) == [0.1, 0.2]
    assert sum(len(c.get_offsets()) for c in fig.axes[0].collections) == 3
    plt.close(fig)
    fig = plot_pareto(pts[:2], also=["latency_gpu_bs1_ms"])  # one GPU point: no staircase
    assert len(fig.axes[2].lines) == 0
    plt.close(fig)
    with pytest.raises(TypeError, match="also must be a sequence of field names"):
        plot_pareto(pts, also="latency_gpu_bs1_ms")

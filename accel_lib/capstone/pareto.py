"""The Pareto front of measured variants over (accuracy up, latency down, size down).

A variant *dominates* another when it is at least as good in every objective and strictly
better in one. Equal points (duplicates) do not dominate each other, so both stay on the
front; a tie in one objective is decided by the others.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from ..bench import markdown_table

__all__ = ["OBJECTIVES", "objective_values", "dominates", "pareto_front", "pareto_table",
           "plot_pareto"]

# field -> +1 (higher is better) or -1 (lower is better)
OBJECTIVES = {"accuracy": +1, "latency_bs1_ms": -1, "size_bytes": -1}


def _get(point: Any, key: str) -> float:
    value = point.get(key) if isinstance(point, Mapping) else getattr(point, key, None)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise ValueError(f"every point needs a real number for {key!r}, got {value!r}")
    return float(value)


def objective_values(point: Any, objectives: Mapping[str, int] = OBJECTIVES) -> tuple[float, ...]:
    """The point's objectives as a tuple where larger is always better (lower-is-better
    ones negated). ``point`` is a mapping or an object with those attributes."""
    return tuple(sign * _get(point, key) for key, sign in objectives.items())


def dominates(a: Any, b: Any, objectives: Mapping[str, int] = OBJECTIVES) -> bool:
    """True when ``a`` is at least as good as ``b`` everywhere and strictly better once."""
    va, vb = objective_values(a, objectives), objective_values(b, objectives)
    return all(x >= y for x, y in zip(va, vb, strict=True)) and va != vb


def _check_objectives(objectives: Mapping[str, int]) -> None:
    if not isinstance(objectives, Mapping) or not objectives:
        raise TypeError(f"objectives must be a non-empty mapping name -> +1 or -1, "
                        f"got {objectives!r}")
    for key, sign in objectives.items():
        if sign not in (1, -1):
            raise ValueError(f"objectives[{key!r}] must be +1 (higher is better) or -1 "
                             f"(lower is better), got {sign!r}")


def pareto_front(points: Sequence[Any], objectives: Mapping[str, int] = OBJECTIVES) -> list[int]:
    """Indices (in input order) of the non-dominated points. Duplicates are all kept."""
    _check_objectives(objectives)
    if not isinstance(points, Sequence) or isinstance(points, (str, bytes)):
        raise TypeError(f"points must be a sequence of records, got {type(points).__name__}")
    values = [objective_values(p, objectives) for p in points]
    front = []
    for i, vi in enumerate(values):
        if not any(all(x >= y for x, y in zip(vj, vi, strict=True)) and vj != vi
                   for vj in values):
            front.append(i)
    return front


def _name(point: Any, i: int) -> str:
    if isinstance(point, Mapping):
        return str(point.get("step", point.get("name", i)))
    return str(getattr(point, "step", getattr(point, "name", i)))


def _raw(point: Any, key: str) -> Any:
    return point.get(key) if isinstance(point, Mapping) else getattr(point, key, None)


def pareto_table(points: Sequence[Any], objectives: Mapping[str, int] = OBJECTIVES) -> str:
    """A markdown table of every point, its objectives and whether it is on the front."""
    front = set(pareto_front(points, objectives))
    rows = [[_name(p, i)] + [_raw(p, k) for k in objectives] + ["yes" if i in front else ""]
            for i, p in enumerate(points)]
    return markdown_table(["variant", *objectives, "on front"], rows)


def _has(point: Any, key: str) -> bool:
    value = _raw(point, key)
    return isinstance(value, (int, float)) and not isinstance(value, bool) \
        and not math.isnan(value)


def plot_pareto(points: Sequence[Any], objectives: Mapping[str, int] = OBJECTIVES, *,
                also: Sequence[str] = (), ax: Any = None, title: str = "") -> Any:
    """Scatter the 2-D projections (the first objective against each other one): the points
    of the front over all objectives in red, each projection's own 2-D front as a staircase.

    ``also``: more lower-is-better fields (e.g. ``"latency_gpu_bs1_ms"``), each drawn in a
    panel of its own for the points that have a number for it (the others are left out of
    that panel). They are not objectives: red is still the front over ``objectives``, and
    the staircase is that panel's own 2-D front.

    Returns the matplotlib figure.
    """
    import matplotlib.pyplot as plt

    front = set(pareto_front(points, objectives))
    keys = list(objectives)
    if isinstance(also, str) or not all(isinstance(k, str) for k in also):
        raise TypeError(f"also must be a sequence of field names, got {also!r}")
    extra = [k for k in also if k not in objectives]
    objectives = {**objectives, **{k: -1 for k in extra}}
    pairs = [(k, keys[0]) for k in keys[1:] + extra] or [(keys[0], keys[0])]
    if ax is None:
        fig, axes = plt.subplots(1, len(pairs), figsize=(5 * len(pairs), 3.6), squeeze=False)
        axes = list(axes[0])
    else:
        axes, fig = [ax], ax.figure
    for a, (kx, ky) in zip(axes, pairs, strict=False):
        shown = [i for i, p in enumerate(points) if kx not in extra or _has(p, kx)]
        for i in shown:
            p, on = points[i], i in front
            a.scatter(_get(p, kx), _get(p, ky), c="tab:red" if on else "tab:gray",
                      s=40 if on else 20, zorder=3 if on else 2)
        # the trade-off of this projection alone: a staircase through its own 2-D front (a
        # point of the full front may sit below it, kept by the third objective)
        sub = [points[i] for i in shown]
        flat = pareto_front(sub, {kx: objectives[kx], ky: objectives[ky]})
        xs = sorted((_get(sub[i], kx), _get(sub[i], ky)) for i in flat)
        if len(xs) > 1:
            a.plot(*zip(*xs, strict=True), c="tab:red", lw=0.8, alpha=0.5,
                   drawstyle="steps-post" if objectives[kx] < 0 else "steps-pre")
        a.set_xlabel(kx)
        a.set_ylabel(ky)
        if kx == "size_bytes" or "latency" in kx:  # spans decades (and one slow outlier
            a.set_xscale("log")                    # would squash the rest into a corner)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig

"""Argument checks shared by every module: errors that name the parameter and what it accepts."""

from __future__ import annotations

__all__ = ["check_int"]


def check_int(value: object, name: str, minimum: int = 1) -> int:
    """Return ``value`` if it is an int (not a bool) ``>= minimum``, else raise ValueError.

    The message names ``name`` and the accepted range, e.g. ``"rank must be a positive int,
    got 0"``.
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        accepted = {0: "a non-negative int", 1: "a positive int"}.get(minimum,
                                                                      f"an int >= {minimum}")
        raise ValueError(f"{name} must be {accepted}, got {value!r}")
    return value

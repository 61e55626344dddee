"""Shared fixtures for the library and course tests."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _seeded() -> None:
    from accel_lib import set_seed

    set_seed(0)

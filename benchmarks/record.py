"""The record format of benchmarks/results.json."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Record:
    """One benchmark figure; ``baseline`` is what ``value`` is compared against, if anything."""

    name: str
    value: float
    unit: str
    baseline: float | None = None
    notes: str = ""

    def as_dict(self) -> dict:
        return asdict(self)

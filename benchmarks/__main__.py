"""Run the benchmark suite: python -m benchmarks [--only PREFIX ...]."""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

import torch

from accel_lib.bench import markdown_table

from . import (
    capstone,
    deploy,
    distillation,
    fusion,
    grading,
    lowrank,
    machine,
    notebooks,
    optim,
    parallel,
    precision,
    pruning,
    quantization,
)

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results.json"
# Record-name prefix -> the module whose records() measures it. A new suite is one line here.
SUITES = {
    "bench": machine,
    "course": notebooks,
    "optim": optim,
    "pruning": pruning,
    "quantization": quantization,
    "distillation": distillation,
    "lowrank": lowrank,
    "fusion": fusion,
    "precision": precision,
    "grading": grading,
    "deploy": deploy,
    "parallel": parallel,
    "capstone": capstone,
}


def main(argv: list[str] | None = None) -> int:
    suites = SUITES
    parser = argparse.ArgumentParser(description="Run the course's benchmark suite.")
    parser.add_argument("--only", nargs="*", choices=sorted(suites), default=sorted(suites),
                        help="run only these suites (record-name prefixes)")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    records = []
    for prefix in args.only:
        print(f"running {prefix} ...", file=sys.stderr, flush=True)
        records += [r.as_dict() for r in suites[prefix].records()]
    # Keep records of suites not run this time, so `--only` refreshes part of the file.
    if args.output.exists():
        ran = {r["name"] for r in records}
        kept = [r for r in json.loads(args.output.read_text()) if r["name"] not in ran
                and r["name"].split("/", 1)[0] not in args.only]
        records = kept + records
    records.sort(key=lambda r: r["name"])
    args.output.write_text(json.dumps(records, indent=2) + "\n")
    print(f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; written to {args.output}\n")
    print(markdown_table(["name", "value", "unit", "baseline", "notes"],
                         [[r["name"], r["value"], r["unit"], r["baseline"], r["notes"]]
                          for r in records]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

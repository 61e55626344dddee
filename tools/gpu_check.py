"""``make gpu-check``: on a CUDA machine, run what only a GPU can check, in under 8 minutes.

    python -m tools.gpu_check            # everything; writes benchmarks/results-gpu.json
    python -m tools.gpu_check --dry-run  # print the plan, run nothing

The plan: execute every solution notebook (nbclient, each in its own process and folder,
so their GPU branches run), the ``@pytest.mark.gpu`` tests, and the GPU benchmark rows
(:func:`benchmarks.precision.gpu_records`). Each step has its own timeout and the whole
run a budget (:data:`BUDGET_S`): steps that would start past it are reported as not run.
Without CUDA it prints ``no CUDA GPU here: nothing to check`` and exits 0, running nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS_GPU = ROOT / "benchmarks" / "results-gpu.json"
BUDGET_S = 480.0  # 8 minutes for the whole check
NOTEBOOK_TIMEOUT_S = 150
NO_GPU = "no CUDA GPU here: nothing to check"


@dataclass(frozen=True)
class Step:
    """One command of the check: its name, argv (run in the repository root) and timeout."""

    name: str
    argv: tuple[str, ...]
    timeout_s: float


@dataclass
class StepResult:
    name: str
    status: str  # "passed", "failed", "timeout" or "not run (budget)"
    seconds: float
    tail: str = ""


def solution_notebooks(root: Path = ROOT) -> list[Path]:
    return sorted((root / "solutions").glob("[0-9][0-9]_*/[0-9][0-9]_*.ipynb"))


def plan(root: Path = ROOT, python: str = sys.executable) -> list[Step]:
    """Every step of the check, in order: notebooks, GPU tests, GPU benchmark rows."""
    steps = [Step(f"notebook {nb.relative_to(root)}",
                  (python, "-m", "tools.gpu_check", "--run-notebook", str(nb)),
                  NOTEBOOK_TIMEOUT_S) for nb in solution_notebooks(root)]
    steps.append(Step("pytest -m gpu", (python, "-m", "pytest", "-q", "-m", "gpu",
                                        "-p", "no:cacheprovider", "tests"), 180))
    steps.append(Step("gpu benchmark rows", (python, "-m", "tools.gpu_check", "--bench-rows"),
                      180))
    return steps


def run_notebook(path: Path) -> None:
    """Execute one notebook in its own folder (raises on the first error)."""
    import nbformat
    from nbclient import NotebookClient

    from tools.kernel_client import wakeful_config

    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=NOTEBOOK_TIMEOUT_S, kernel_name="python3", allow_errors=False,
                   config=wakeful_config(),
                   resources={"metadata": {"path": str(path.parent)}}).execute()


def bench_rows(out: Path) -> None:
    from benchmarks.precision import gpu_records

    out.write_text(json.dumps([r.as_dict() for r in gpu_records()], indent=2) + "\n")


def run_steps(steps: list[Step], budget_s: float = BUDGET_S, cwd: Path = ROOT,
              env: dict[str, str] | None = None) -> list[StepResult]:
    """Run ``steps`` in order; a step that cannot start before the budget is spent is skipped."""
    start = time.monotonic()
    results = []
    for step in steps:
        left = budget_s - (time.monotonic() - start)
        if left <= 5:
            results.append(StepResult(step.name, "not run (budget)", 0.0))
            continue
        t0 = time.monotonic()
        try:
            proc = subprocess.run(step.argv, cwd=cwd, env=env, capture_output=True, text=True,
                                  timeout=min(step.timeout_s, left))
            status = "passed" if proc.returncode == 0 else "failed"
            tail = (proc.stdout + proc.stderr)[-2000:]
        except subprocess.TimeoutExpired:
            status, tail = "timeout", ""
        results.append(StepResult(step.name, status, round(time.monotonic() - t0, 1), tail))
        print(f"{status:>8}  {results[-1].seconds:6.1f} s  {step.name}", flush=True)
    return results


def write_results(path: Path, device: str, steps: list[StepResult], records: list[dict],
                  ) -> dict:
    """Write the check's JSON: the machine, each step's outcome, the GPU benchmark records."""
    doc = {"device": device, "python": platform.python_version(),
           "passed": all(s.status == "passed" for s in steps),
           "steps": [asdict(s) for s in steps], "records": records}
    path.write_text(json.dumps(doc, indent=2) + "\n")
    return doc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="print the plan, run nothing")
    parser.add_argument("--run-notebook", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--bench-rows", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--output", type=Path, default=RESULTS_GPU)
    args = parser.parse_args(argv)
    if args.run_notebook:
        run_notebook(args.run_notebook)
        return 0
    import torch

    if not torch.cuda.is_available():
        print(NO_GPU)
        return 0
    steps = plan()
    if args.dry_run:
        for s in steps:
            print(f"{s.timeout_s:5.0f} s  {s.name}: {' '.join(s.argv)}")
        return 0
    rows = args.output.with_suffix(".rows.tmp")
    if args.bench_rows:
        bench_rows(args.output)
        return 0
    steps[-1] = Step(steps[-1].name, (*steps[-1].argv, "--output", str(rows)), steps[-1].timeout_s)
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "4")}
    results = run_steps(steps, env=env)
    records = json.loads(rows.read_text()) if rows.exists() else []
    rows.unlink(missing_ok=True)
    sm = "".join(map(str, torch.cuda.get_device_capability(0)))
    doc = write_results(args.output, f"{torch.cuda.get_device_name(0)} (sm_{sm})", results,
                        records)
    print(f"{'passed' if doc['passed'] else 'FAILED'}: written to {args.output}")
    return 0 if doc["passed"] else 1


if __name__ == "__main__":
    raise SystemExit(main())

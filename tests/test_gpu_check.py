"""tools/gpu_check.py (make gpu-check): the no-GPU path and the pieces testable on a CPU."""

from __future__ import annotations

import json
import sys

import torch

from tools import gpu_check


def test_without_cuda_it_says_so_and_runs_nothing(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)

    def boom(*args, **kwargs):
        raise AssertionError("nothing may run without a GPU")

    monkeypatch.setattr(gpu_check, "run_steps", boom)
    out = tmp_path / "results-gpu.json"
    assert gpu_check.main(["--output", str(out)]) == 0
    assert capsys.readouterr().out.strip() == gpu_check.NO_GPU
    assert not out.exists()


def test_plan_runs_every_solution_notebook_then_gpu_tests_and_rows():
    steps = gpu_check.plan()
    notebooks = gpu_check.solution_notebooks()
    assert len(notebooks) >= 7
    assert [s.argv[-1] for s in steps[:len(notebooks)]] == [str(nb) for nb in notebooks]
    assert ("-m", "gpu") == steps[-2].argv[4:6]
    assert "--bench-rows" in steps[-1].argv
    assert sum(s.timeout_s for s in steps[len(notebooks):]) < gpu_check.BUDGET_S


def test_run_steps_reports_pass_fail_and_budget(tmp_path):
    py = sys.executable
    steps = [gpu_check.Step("ok", (py, "-c", "pass"), 30),
             gpu_check.Step("bad", (py, "-c", "raise SystemExit(3)"), 30),
             gpu_check.Step("slow", (py, "-c", "import time; time.sleep(5)"), 0.5)]
    results = gpu_check.run_steps(steps, budget_s=60, cwd=tmp_path)
    assert [r.status for r in results] == ["passed", "failed", "timeout"]
    late = gpu_check.run_steps(steps[:1], budget_s=1, cwd=tmp_path)
    assert late[0].status == "not run (budget)"


def test_write_results_json(tmp_path):
    out = tmp_path / "r.json"
    steps = [gpu_check.StepResult("a", "passed", 1.0), gpu_check.StepResult("b", "failed", 2.0)]
    records = [{"name": "precision/gpu-tf32-speedup", "value": 2.0, "unit": "x",
                "baseline": 1.0, "notes": ""}]
    doc = gpu_check.write_results(out, "H200 (sm_90)", steps, records)
    assert json.loads(out.read_text()) == doc
    assert doc["passed"] is False and doc["records"] == records and doc["device"] == "H200 (sm_90)"

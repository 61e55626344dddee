"""Execution time and peak memory of every solution notebook (the course's budget)."""

from __future__ import annotations

import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from tools.course import NOTEBOOK_BUDGET_MB, NOTEBOOK_BUDGET_S, SOLUTIONS
from tools.kernel_client import wakeful_config

from .record import Record

# The kernel's own high-water mark of resident memory. Not getrusage's ru_maxrss: Linux
# carries that over from the parent through fork and exec, so it would report this
# benchmark process's peak instead of the notebook's.
_PEAK_RSS_CELL = (
    "import re\n"
    "with open('/proc/self/status') as f:\n"
    "    print(re.search(r'VmHWM:\\s+(\\d+) kB', f.read()).group(1))"
)


def run_notebook(path: Path) -> tuple[float, float]:
    """Execute a notebook in a fresh kernel; return (seconds, the kernel's peak RSS in MB).

    The peak is read inside the kernel by a cell appended to an in-memory copy.
    """
    nb = nbformat.read(path, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(_PEAK_RSS_CELL))
    client = NotebookClient(nb, timeout=600, kernel_name="python3", config=wakeful_config(),
                            resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - start
    peak_kib = float(nb.cells[-1].outputs[0]["text"].strip())
    return seconds, peak_kib / 1024


def records() -> list[Record]:
    out = []
    for path in sorted(SOLUTIONS.glob("*/*.ipynb")):
        seconds, rss_mb = run_notebook(path)
        name = path.stem
        out.append(Record(f"course/notebook-seconds/{name}", seconds, "s", NOTEBOOK_BUDGET_S,
                          "wall time in a fresh kernel, kernel start included; baseline = budget"))
        out.append(Record(f"course/notebook-peak-rss-mb/{name}", rss_mb, "MB", NOTEBOOK_BUDGET_MB,
                          "peak resident memory of the kernel; baseline = Binder's limit"))
    return out

"""accel_lib: the library behind the AI model acceleration course.

Shared modules: ``runtime`` (seeds, devices), ``bench`` (the timer), ``stats`` (params,
bytes, FLOPs, memory), ``roofline``, ``data``, ``models``, ``train``, ``checks``.
Technique modules (pruning, quantization, ...) build on these.
"""

from .bench import Comparison, Timing, compare, markdown_table, ratio_table, time_fn
from .runtime import get_device, set_seed, synchronize

__version__ = "0.1.0"

__all__ = [
    "Comparison",
    "Timing",
    "compare",
    "markdown_table",
    "ratio_table",
    "time_fn",
    "get_device",
    "set_seed",
    "synchronize",
    "__version__",
]

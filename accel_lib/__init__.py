"""accel_lib: the library behind the AI model acceleration course.

Shared modules: ``runtime`` (seeds, devices), ``bench`` (the timer), ``stats`` (params,
bytes, FLOPs, memory), ``roofline``, ``data``, ``models``, ``train``, ``checks``.
Technique modules build on these: ``pruning`` (with ``pruning_structured``, ``pruning_nm``,
``pruning_schedule``), ``quantization`` (re-exporting ``quant_ops``, ``quant_observers``,
``quant_models``, ``quant_int``), ``distillation`` and ``lowrank``.
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

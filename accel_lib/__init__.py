"""accel_lib: the library behind the AI model acceleration course.

Shared core (every notebook's first imports): ``runtime`` (seeds, devices), ``bench`` (the
timer), ``stats`` (params, FLOPs, every ``*_bytes`` size), ``roofline``, ``data``,
``models``, ``train``, ``checks``, ``nn_utils`` (model plumbing: ``eval_mode``,
``replace_modules_``, ...), ``_validate`` (argument checks).

Techniques build on the core, one room each: a package when a technique has several ideas
(``pruning/``, ``quantization/``, ``fusion/``: their ``__init__`` is the public face), a
module when it has one (``distillation``, ``lowrank``)::

    from accel_lib import fusion as FU, pruning as P, quantization as Q
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

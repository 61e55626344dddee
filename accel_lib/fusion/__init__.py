"""Fusion for the course, in one import: ``from accel_lib import fusion as FU``.

Two meanings of "fusion", one package:

*Operator fusion* (graph and compiler optimisation) makes one model run fewer, bigger
kernels that move fewer bytes:

* ``folding``: BatchNorm folded into the conv / Linear before it (pure tensor algebra, one
  pair, every pair of a model), equal to ``torch.nn.utils.fusion``'s.
* ``graph``: torch.fx passes: conv -> bn -> relu fusion by data flow, constant folding,
  dead-code elimination, and a readable view of a graph.
* ``compile``: ``torch.compile`` measured honestly (compile time apart from the steady-state
  ratio) and the code inductor generates.
* ``xla``: TensorFlow's ``tf.function(jit_compile=True)``, imported after torch.

*Model fusion* combines several models' predictions or weights:

* ``ensemble``: majority vote, soft (probability) averaging, concatenated features, a
  learned fusion layer.
* ``soup``: weight averaging of fine-tuned copies (uniform and greedy soups).

Distilling an ensemble into one student reuses :func:`accel_lib.distillation.distill`
with an :class:`Ensemble` as the teacher.
"""

from __future__ import annotations

from .compile import (
    COMPILE_MODES,
    RESULT_HEADER,
    CompileResult,
    chain_cost,
    compile_and_compare,
    compiler_available,
    elementwise_chain,
    generated_code,
    kernel_sources,
)
from .ensemble import (
    FUSION_METHODS,
    Ensemble,
    FeatureConcat,
    LearnedFusion,
    majority_vote,
    member_logits,
    penultimate_features,
    soft_vote,
)
from .folding import (
    CONV_TYPES,
    check_eval,
    fold_bn_,
    fold_bn_weights,
    foldable_pairs,
    fuse_conv_bn,
    fuse_linear_bn,
    fuse_pair,
)
from .graph import (
    ConvReLU,
    LinearReLU,
    count_ops,
    describe_graph,
    eliminate_dead_code,
    fold_constants,
    fuse_fx,
    is_relu,
    trace,
)
from .soup import average_state_dicts, greedy_soup, uniform_soup
from .xla import import_tensorflow, keras_mlp_from_torch, tf_elementwise_chain, xla_compare

__all__ = [
    # folding
    "CONV_TYPES", "fold_bn_weights", "fuse_conv_bn", "fuse_linear_bn", "fuse_pair",
    "check_eval", "foldable_pairs", "fold_bn_",
    # graph
    "ConvReLU", "LinearReLU", "trace", "fuse_fx", "is_relu", "eliminate_dead_code",
    "fold_constants", "count_ops", "describe_graph",
    # compile
    "COMPILE_MODES", "RESULT_HEADER", "CompileResult", "compiler_available",
    "compile_and_compare", "generated_code", "kernel_sources", "elementwise_chain",
    "chain_cost",
    # xla
    "import_tensorflow", "keras_mlp_from_torch", "tf_elementwise_chain", "xla_compare",
    # ensemble
    "FUSION_METHODS", "member_logits", "majority_vote", "soft_vote", "penultimate_features",
    "Ensemble", "FeatureConcat", "LearnedFusion",
    # soup
    "average_state_dicts", "uniform_soup", "greedy_soup",
]

"""Pruning for the course, in one import: ``from accel_lib import pruning as P``.

Unstructured zeros leave every tensor its dense shape; structured pruning removes whole
channels and makes the model smaller for real. The technique lives in small modules,
re-exported here (Torch-Pruning's tiers: scores under per-layer surgery under a pruner):

* ``layers``: which layers pruning touches (every Linear / Conv, by name).
* ``scores``: importance: magnitude (L1/L2), Taylor, Optimal Brain Damage.
* ``unstructured``: keep-masks, layer-wise and global, attached as parametrizations that
  persist through training; ``make_permanent_`` bakes them in.
* ``structured``: channel surgery (conv, BatchNorm, the next conv or Linear).
* ``nm``: N:M (2:4) semi-structured sparsity for sparse tensor cores.
* ``schedule``: the cubic schedule, iterative prune -> fine-tune, sensitivity analysis.
"""

from __future__ import annotations

from .layers import PRUNABLE_TYPES, prunable_layers, select_layers, weight_param
from .nm import nm_mask, prune_nm_, semi_structured_available, to_semi_structured_
from .schedule import CubicSchedule, cubic_sparsity, iterative_prune_, sensitivity_scan
from .scores import (
    SCORE_METHODS,
    gradient_statistics,
    importance_scores,
    magnitude_scores,
    obd_scores,
    taylor_scores,
)
from .structured import (
    ChannelGroup,
    channel_groups,
    channel_keep_indices,
    channel_scores,
    prune_batchnorm2d,
    prune_channels_,
    prune_conv2d,
    prune_linear_inputs,
    trace_chain,
)
from .unstructured import (
    SCOPES,
    SparsityReport,
    WeightMask,
    attach_mask,
    check_sparsity,
    global_masks,
    make_permanent_,
    mask_of,
    masks,
    num_pruned,
    prune_unstructured_,
    sparsity_report,
    topk_mask,
)

__all__ = [
    # layers
    "PRUNABLE_TYPES", "prunable_layers", "select_layers", "weight_param",
    # scores
    "SCORE_METHODS", "magnitude_scores", "taylor_scores", "obd_scores", "gradient_statistics",
    "importance_scores",
    # unstructured
    "SCOPES", "check_sparsity", "num_pruned", "topk_mask", "global_masks", "WeightMask",
    "mask_of", "attach_mask", "prune_unstructured_", "masks", "make_permanent_",
    "SparsityReport", "sparsity_report",
    # structured
    "ChannelGroup", "channel_scores", "channel_keep_indices", "prune_conv2d",
    "prune_batchnorm2d", "prune_linear_inputs", "trace_chain", "channel_groups",
    "prune_channels_",
    # nm
    "nm_mask", "prune_nm_", "semi_structured_available", "to_semi_structured_",
    # schedule
    "cubic_sparsity", "CubicSchedule", "iterative_prune_", "sensitivity_scan",
]

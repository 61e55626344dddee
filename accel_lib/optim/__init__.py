"""Optimisers for the course, in one import: ``from accel_lib import optim as O``.

Training gets faster through the optimiser in two ways: fewer steps to the same accuracy
(momentum, adaptive step sizes, schedules) and cheaper steps (multi-tensor and fused
updates, less state). The technique lives in small modules, re-exported here:

* ``functional``: the update rules as tensor functions (SGD, classical momentum, AdaGrad,
  RMSProp, Adam/AdamW, Lion, LAMB), per tensor and, for SGD and Adam, multi-tensor
  (``torch._foreach_*``); each equals ``torch.optim``'s numbers.
* ``optimizers``: ``torch.optim.Optimizer`` subclasses built on them, drop-in for the
  course's training loop.
* ``schedules``: step, exponential, cosine, warm-up + cosine, one-cycle, as functions of
  the step, equal to ``torch.optim.lr_scheduler``'s values.
* ``clipping``: clipping by global norm and by value.
* ``cost``: what a step costs: loop vs foreach vs fused time, temporaries, state bytes.
* ``landscape``: 2-D problems (ill-conditioned quadratic, Rosenbrock), trajectories, and
  the rates theory predicts for gradient descent and momentum.
* ``training``: optimisers raced on the digits, steps to a target accuracy.
"""

from __future__ import annotations

from .clipping import clip_grad_norm_, clip_grad_value_, global_grad_norm, grads_of
from .cost import (
    STEP_VARIANTS,
    StepCost,
    fused_available,
    many_small_params,
    measure_steps,
    param_bytes,
    state_bytes,
    state_bytes_ratio,
    step_variants,
)
from .functional import (
    adagrad_step_,
    adam_foreach_,
    adam_step_,
    classical_momentum_step_,
    lamb_step_,
    lion_step_,
    rmsprop_step_,
    sgd_foreach_,
    sgd_step_,
    trust_ratio,
)
from .landscape import (
    Problem,
    Tuning,
    gd_tuning,
    heavy_ball_tuning,
    quadratic,
    rosenbrock,
    trajectory,
)
from .optimizers import (
    LAMB,
    OPTIMIZERS,
    SGD,
    Adagrad,
    Adam,
    AdamW,
    ClassicalMomentum,
    Lion,
    RMSprop,
    build_optimizer,
)
from .schedules import (
    SCHEDULES,
    attach_schedule,
    constant_lr,
    cosine_lr,
    exponential_lr,
    make_schedule,
    one_cycle_lr,
    schedule_values,
    step_lr,
    warmup_cosine_lr,
)
from .training import Run, race, run_steps, shuffled_batches

__all__ = [
    # functional
    "sgd_step_", "sgd_foreach_", "classical_momentum_step_", "adagrad_step_", "rmsprop_step_",
    "adam_step_", "adam_foreach_", "lion_step_", "lamb_step_", "trust_ratio",
    # optimizers
    "SGD", "ClassicalMomentum", "Adagrad", "RMSprop", "Adam", "AdamW", "Lion", "LAMB",
    "OPTIMIZERS", "build_optimizer",
    # schedules
    "constant_lr", "step_lr", "exponential_lr", "cosine_lr", "warmup_cosine_lr", "one_cycle_lr",
    "SCHEDULES", "make_schedule", "schedule_values", "attach_schedule",
    # clipping
    "grads_of", "global_grad_norm", "clip_grad_norm_", "clip_grad_value_",
    # cost
    "state_bytes", "param_bytes", "state_bytes_ratio", "fused_available", "many_small_params",
    "STEP_VARIANTS", "step_variants", "StepCost", "measure_steps",
    # landscape
    "Problem", "quadratic", "rosenbrock", "trajectory", "Tuning", "gd_tuning",
    "heavy_ball_tuning",
    # training
    "Run", "run_steps", "shuffled_batches", "race",
]

"""The one argument-checking vocabulary: a wrong type is a TypeError, a wrong value a
ValueError, and every message names the parameter and what it accepts."""

from __future__ import annotations

import importlib
import inspect
import math
import pkgutil

import numpy as np
import pytest
import torch
from torch import nn

import accel_lib
from accel_lib._validate import (
    check_choice,
    check_fraction,
    check_int,
    check_module,
    check_real,
    check_tensor,
)
from accel_lib.models import MLP


def test_check_int_accepts_numpy_ints_and_returns_python_ints():
    value = check_int(np.int64(4), "rank")
    assert value == 4 and type(value) is int
    assert check_int(5, "bits", 2, 16) == 5
    with pytest.raises(ValueError, match=r"bits must be an int in \[2, 16\], got 17"):
        check_int(17, "bits", 2, 16)
    with pytest.raises(ValueError, match="axis must be an int <= 1, got 2"):
        check_int(2, "axis", None, 1)
    with pytest.raises(TypeError, match="must be an int, got str '3'"):
        check_int("3", "n", None)


@pytest.mark.parametrize("value", [0.5, 0, np.float32(0.5), np.float64(0.25), np.int64(0)])
def test_check_real_accepts_every_real_number_type(value):
    out = check_real(value, "sparsity", low=0, high=1, high_open=True)
    assert type(out) is float and out == float(value)


@pytest.mark.parametrize("value, error, message", [
    (True, TypeError, r"sparsity must be a number in \[0, 1\), got bool True"),
    ("0.5", TypeError, "got str '0.5'"),
    (None, TypeError, "got NoneType None"),
    (math.nan, ValueError, "got nan"),
    (1.0, ValueError, r"\[0, 1\), got 1.0"),
    (-0.1, ValueError, "got -0.1"),
])
def test_check_real_errors(value, error, message):
    with pytest.raises(error, match=message):
        check_real(value, "sparsity", low=0, high=1, high_open=True)


def test_check_real_bounds_and_meanings():
    assert check_real(0.0, "x") == 0.0
    with pytest.raises(ValueError, match="x must be a finite number, got inf"):
        check_real(math.inf, "x")
    with pytest.raises(ValueError, match="temperature must be a finite number > 0, got 0"):
        check_real(0, "temperature", low=0, low_open=True)
    with pytest.raises(ValueError, match="lr must be a finite number <= 1"):
        check_real(2, "lr", high=1)
    with pytest.raises(ValueError, match=r"alpha must be a number in \(0, 1\] \(a weight\)"):
        check_fraction(0.0, "alpha", zero=False, one=True, meaning="(a weight)")
    assert check_fraction(1, "alpha", one=True) == 1.0


def test_check_choice_lists_the_choices():
    registry = {"l1": None, "l2": None}
    assert check_choice("l1", "method", registry) == "l1"
    with pytest.raises(ValueError, match=r"method must be one of \['l1', 'l2'\], got 'l3'"):
        check_choice("l3", "method", registry)
    with pytest.raises(ValueError, match="got \\[1\\]"):
        check_choice([1], "method", registry)  # unhashable: simply not a choice


def test_check_module_says_pass_an_instance_for_a_class():
    model = MLP()
    assert check_module(model) is model
    with pytest.raises(TypeError, match=r"got the class MLP: pass an instance, e.g. MLP\(\)"):
        check_module(MLP)
    with pytest.raises(TypeError, match="teacher must be an nn.Module, got str"):
        check_module("mlp", "teacher")


def test_check_tensor_kinds_dims_and_emptiness():
    t = torch.ones(2, 3)
    assert check_tensor(t, "x", ndim=2) is t
    with pytest.raises(TypeError, match=r"x must be a torch.Tensor \(convert it with "
                                        r"torch.as_tensor\), got list"):
        check_tensor([1.0], "x")
    with pytest.raises(TypeError, match="torch.as_tensor"):
        check_tensor(np.ones(3), "x")
    with pytest.raises(ValueError, match=r"x must be a 1-D tensor, got shape \(2, 3\)"):
        check_tensor(t, "x", ndim=1)
    with pytest.raises(ValueError, match="x must not be empty"):
        check_tensor(torch.ones(0), "x")
    assert check_tensor(torch.ones(0), "x", allow_empty=True).numel() == 0


def test_check_tensor_finite_counts_the_bad_values():
    x = torch.tensor([1.0, math.nan, math.inf, -math.inf, 2.0])
    with pytest.raises(ValueError, match="x must be finite, got 1 NaN and 2 infinite values of 5"):
        check_tensor(x, "x", finite=True)
    assert check_tensor(x, "x") is x  # only checked on request
    codes = torch.tensor([1, 2], dtype=torch.int8)
    assert check_tensor(codes, "q", finite=True) is codes  # integers are always finite


# --------------------------------------------- a class instead of a model, everywhere

def _model_calls() -> dict[str, object]:
    """One call per public function with a model argument, the model given as ``m``."""
    from accel_lib import capstone as C
    from accel_lib import distillation as D
    from accel_lib import export as E
    from accel_lib import fusion as F
    from accel_lib import lowrank as L
    from accel_lib import nn_utils as U
    from accel_lib import optim as O
    from accel_lib import parallel as PA
    from accel_lib import precision as PR
    from accel_lib import pruning as P
    from accel_lib import quantization as Q
    from accel_lib import stats as S
    from accel_lib import train as T

    x, img, y = torch.randn(2, 64), torch.randn(2, 1, 8, 8), torch.tensor([0, 1])
    opt = torch.optim.SGD(MLP().parameters(), lr=0.1)
    return {
        "stats.count_params": lambda m: S.count_params(m),
        "stats.model_size_bytes": lambda m: S.model_size_bytes(m),
        "stats.state_size_bytes": lambda m: S.state_size_bytes(m),
        "stats.serialized_size_bytes": lambda m: S.serialized_size_bytes(m),
        "stats.count_flops": lambda m: S.count_flops(m, x),
        "nn_utils.eval_mode": lambda m: U.eval_mode(m).__enter__(),
        "nn_utils.model_device": lambda m: U.model_device(m),
        "nn_utils.layers_of_type": lambda m: U.layers_of_type(m, nn.Linear),
        "nn_utils.swappable_layers": lambda m: U.swappable_layers(m, nn.Linear),
        "nn_utils.replace_modules_": lambda m: U.replace_modules_(m, lambda _: None),
        "nn_utils.reads_child_weights": lambda m: U.reads_child_weights(m),
        "train.train": lambda m: T.train(m, []),
        "train.evaluate": lambda m: T.evaluate(m, []),
        "pruning.prunable_layers": lambda m: P.prunable_layers(m),
        "pruning.select_layers": lambda m: P.select_layers(m, None),
        "pruning.weight_param": lambda m: P.weight_param(m),
        "pruning.mask_of": lambda m: P.mask_of(m),
        "pruning.attach_mask": lambda m: P.attach_mask(m, torch.ones(1)),
        "pruning.gradient_statistics": lambda m: P.gradient_statistics(m, []),
        "pruning.importance_scores": lambda m: P.importance_scores(m),
        "pruning.prune_unstructured_": lambda m: P.prune_unstructured_(m, 0.5),
        "pruning.masks": lambda m: P.masks(m),
        "pruning.make_permanent_": lambda m: P.make_permanent_(m),
        "pruning.sparsity_report": lambda m: P.sparsity_report(m),
        "pruning.trace_chain": lambda m: P.trace_chain(m, img),
        "pruning.channel_groups": lambda m: P.channel_groups(m, img),
        "pruning.prune_channels_": lambda m: P.prune_channels_(m, 0.5, img),
        "pruning.prune_nm_": lambda m: P.prune_nm_(m),
        "pruning.to_semi_structured_": lambda m: P.to_semi_structured_(m),
        "pruning.iterative_prune_": lambda m: P.iterative_prune_(m, [], [0.5]),
        "pruning.sensitivity_scan": lambda m: P.sensitivity_scan(m, lambda _: 0.0, [0.5]),
        "quantization.QuantWrapper": lambda m: Q.QuantWrapper(m, Q.QuantConfig()),
        "quantization.quant_wrappers": lambda m: Q.quant_wrappers(m),
        "quantization.prepare_": lambda m: Q.prepare_(m),
        "quantization.calibrate_": lambda m: Q.calibrate_(m, [x]),
        "quantization.ptq_": lambda m: Q.ptq_(m, [x]),
        "quantization.qat_": lambda m: Q.qat_(m, []),
        "quantization.dynamic_quantize": lambda m: Q.dynamic_quantize(m),
        "quantization.convert_to_int_": lambda m: Q.convert_to_int_(m),
        "lowrank.choose_ranks": lambda m: L.choose_ranks(m, 0.5),
        "lowrank.factorize_": lambda m: L.factorize_(m, {}),
        "distillation.FeatureHint student": lambda m: D.FeatureHint(m, "net.1", MLP(), "net.1", x),
        "distillation.FeatureHint teacher": lambda m: D.FeatureHint(MLP(), "net.1", m, "net.1", x),
        "distillation.distill_step student": lambda m: D.distill_step(m, MLP(), x, y, opt),
        "distillation.distill_step teacher": lambda m: D.distill_step(MLP(), m, x, y, opt),
        "distillation.distill student": lambda m: D.distill(m, MLP(), []),
        "distillation.distill teacher": lambda m: D.distill(MLP(), m, []),
        "fusion.check_eval": lambda m: F.check_eval(m),
        "fusion.fold_bn_": lambda m: F.fold_bn_(m),
        "fusion.foldable_pairs": lambda m: F.foldable_pairs(m),
        "fusion.fuse_conv_bn": lambda m: F.fuse_conv_bn(m, nn.BatchNorm2d(1).eval()),
        "fusion.fuse_conv_bn bn": lambda m: F.fuse_conv_bn(nn.Conv2d(1, 1, 1).eval(), m),
        "fusion.fuse_linear_bn": lambda m: F.fuse_linear_bn(m, nn.BatchNorm1d(1).eval()),
        "fusion.fuse_pair": lambda m: F.fuse_pair(m, nn.BatchNorm1d(1).eval()),
        "fusion.fuse_fx": lambda m: F.fuse_fx(m),
        "fusion.trace": lambda m: F.trace(m),
        "fusion.ConvReLU": lambda m: F.ConvReLU(m),
        "fusion.LinearReLU": lambda m: F.LinearReLU(m),
        "fusion.Ensemble": lambda m: F.Ensemble([m]),
        "fusion.LearnedFusion": lambda m: F.LearnedFusion([m], 10),
        "fusion.FeatureConcat": lambda m: F.FeatureConcat([m], x, 10),
        "fusion.member_logits": lambda m: F.member_logits([m], x),
        "fusion.penultimate_features": lambda m: F.penultimate_features(m, x),
        "fusion.uniform_soup": lambda m: F.uniform_soup([m]),
        "fusion.greedy_soup": lambda m: F.greedy_soup([m], lambda _: 0.0),
        "fusion.keras_mlp_from_torch": lambda m: F.keras_mlp_from_torch(m),
        "optim.run_steps": lambda m: O.run_steps(m, opt, [], [], steps=1),
        "export.export_onnx": lambda m: E.export_onnx(m, x, "unused.onnx"),
        "export.onnx_max_abs_diff": lambda m: E.onnx_max_abs_diff(m, "unused.onnx", x),
        "export.unsupported_layer": lambda m: E.unsupported_layer(m, x),
        "export.keras_from_torch": lambda m: E.keras_from_torch(m, x),
        "export.keras_twin": lambda m: E.keras_twin(m, x, None),
        "export.torch_chain": lambda m: E.torch_chain(m, x),
        "parallel.average_gradients_": lambda m: PA.average_gradients_(m),
        "parallel.gpipe_step": lambda m: PA.gpipe_step(m, x, y, 2),
        "parallel.split_stages": lambda m: PA.split_stages(m, 2),
        "precision.MasterWeights": lambda m: PR.MasterWeights(m, torch.optim.SGD),
        "precision.channels_last_timing": lambda m: PR.channels_last_timing(m, (1, 8, 8)),
        "precision.compare_precisions": lambda m: PR.compare_precisions(m, None),
        "precision.train_mixed": lambda m: PR.train_mixed(m, None),
        "capstone.apply_step": lambda m: C.apply_step(m, C.Step("fold"), None),
        "capstone.grid_search": lambda m: C.grid_search(m, None, []),
    }


def _public_functions_taking_a_model() -> set[str]:
    """Every public callable of accel_lib with a parameter annotated as a module."""
    found = set()
    for info in pkgutil.walk_packages(accel_lib.__path__, "accel_lib."):
        module = importlib.import_module(info.name)
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name)
            if not callable(obj) or obj.__module__ != module.__name__:
                continue
            try:
                params = inspect.signature(obj).parameters.values()
            except (TypeError, ValueError):
                continue
            # a traced GraphModule has its own message (see trace()); a dict of modules is a
            # lookup table, not a model
            if any("Module" in str(p.annotation) and "Callable" not in str(p.annotation)
                   and "GraphModule" not in str(p.annotation)
                   and not str(p.annotation).startswith("dict[")
                   and p.name not in ("adapter",) for p in params):
                package = module.__name__.split(".")[1]
                found.add(f"{package}.{name}")
    return found


def test_every_public_function_taking_a_model_is_in_the_list_below():
    listed = {key.split(" ")[0] for key in _model_calls()}
    assert _public_functions_taking_a_model() - listed == set()


@pytest.mark.parametrize("name", sorted(_model_calls()))
def test_a_class_for_a_model_is_one_type_error_everywhere(name):
    """MLP for MLP(): one type, one message, whatever the function."""
    with pytest.raises(TypeError, match=r"must be an nn.Module instance, got the class MLP: "
                                        r"pass an instance, e.g. MLP\(\)"):
        _model_calls()[name](MLP)

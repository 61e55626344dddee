"""torch.fx passes: operator fusion, constant folding, dead-code elimination."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import fx, nn

from accel_lib.fusion import (
    ConvReLU,
    LinearReLU,
    count_ops,
    describe_graph,
    eliminate_dead_code,
    fold_constants,
    fuse_fx,
    trace,
)
from accel_lib.models import MLP, SmallCNN
from tests.fusion.conftest import randomize_bn_


def test_fuse_fx_folds_and_fuses_a_chain_cnn(cnn_seq):
    x = torch.randn(4, 1, 8, 8)
    state = copy.deepcopy(cnn_seq.state_dict())
    gm = fuse_fx(cnn_seq)
    assert count_ops(trace(cnn_seq)) == {"Conv2d": 2, "BatchNorm2d": 2, "ReLU": 2,
                                         "MaxPool2d": 1, "Flatten": 1, "Linear": 1}
    assert count_ops(gm) == {"ConvReLU": 2, "MaxPool2d": 1, "Flatten": 1, "Linear": 1}
    with torch.no_grad():
        torch.testing.assert_close(gm(x), cnn_seq(x), rtol=1e-5, atol=1e-5)
    # the original is untouched
    assert all(torch.equal(state[k], v) for k, v in cnn_seq.state_dict().items())
    assert isinstance(cnn_seq[1], nn.BatchNorm2d)
    assert "ConvReLU" in describe_graph(gm) and "| call_module |" in describe_graph(gm)


def test_fuse_fx_equals_torchs_own_fx_fuser_on_resnet18():
    from torch.fx.experimental.optimization import fuse as torch_fuse
    from torchvision.models import resnet18

    model = randomize_bn_(resnet18(num_classes=10)).eval()
    x = torch.randn(2, 3, 32, 32)
    gm = fuse_fx(model)
    ops = count_ops(gm)
    assert "BatchNorm2d" not in ops  # all 20 are folded, through the residual blocks
    assert ops["ConvReLU"] == 9  # stem + the first conv of each of the 8 blocks
    with torch.no_grad():
        ref = model(x)
        torch.testing.assert_close(gm(x), ref, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(gm(x), torch_fuse(model)(x), rtol=1e-4, atol=1e-5)


class _Spellings(nn.Module):
    """Every way to write a ReLU, each after a conv or linear with a BatchNorm."""

    def __init__(self) -> None:
        super().__init__()
        self.c1, self.b1 = nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4)
        self.c2, self.b2 = nn.Conv2d(4, 4, 3, padding=1), nn.BatchNorm2d(4)
        self.c3 = nn.Conv2d(4, 4, 1)
        self.l1, self.bl = nn.Linear(4 * 5 * 5, 8), nn.BatchNorm1d(8)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.b1(self.c1(x)))
        x = torch.relu(self.b2(self.c2(x)))
        x = self.c3(x).relu()
        return self.relu(self.bl(self.l1(x.flatten(1))))


def test_every_relu_spelling_is_fused():
    model = randomize_bn_(_Spellings()).eval()
    x = torch.randn(3, 2, 5, 5)
    gm = fuse_fx(model)
    assert count_ops(gm) == {"ConvReLU": 3, "flatten": 1, "LinearReLU": 1}
    assert isinstance(gm.c3, ConvReLU) and isinstance(gm.l1, LinearReLU)
    with torch.no_grad():
        torch.testing.assert_close(gm(x), model(x), rtol=1e-5, atol=1e-5)


class _Residual(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv, self.bn = nn.Conv2d(3, 3, 3, padding=1), nn.BatchNorm2d(3)
        self.shared = nn.Conv2d(3, 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        z = torch.relu(self.shared(x)) + self.shared(x)  # one module called twice
        return torch.relu(self.bn(y) + y) + z  # conv's output has two users


def test_layers_whose_output_has_other_users_are_left_alone():
    model = randomize_bn_(_Residual()).eval()
    x = torch.randn(2, 3, 6, 6)
    gm = fuse_fx(model)
    assert count_ops(gm) == count_ops(trace(model))
    with torch.no_grad():
        torch.testing.assert_close(gm(x), model(x))


def test_untraceable_and_training_models_are_refused():
    with pytest.raises(ValueError, match=r"cannot be traced by torch\.fx.*control flow"):
        trace(SmallCNN().eval())  # its forward checks the input shape in Python
    with pytest.raises(ValueError, match="cannot be traced"):
        fuse_fx(MLP().eval())
    with pytest.raises(ValueError, match="training mode"):
        fuse_fx(nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2)))
    # without folding, training mode is fine (nothing depends on the statistics)
    gm = fuse_fx(nn.Sequential(nn.Linear(3, 4), nn.ReLU()), fold_bn=False)
    assert count_ops(gm) == {"LinearReLU": 1}
    with pytest.raises(TypeError, match="GraphModule"):
        eliminate_dead_code(nn.Linear(2, 2))


class _Dead(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self.unused = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.unused(x).sin()  # dead: a module call and what it feeds
        b = x.cos() * 2  # dead
        del a, b
        return self.lin(x)


def test_dead_code_elimination_equals_fx_own():
    model = _Dead()
    ours, ref = trace(model), trace(model)
    assert eliminate_dead_code(ours) == 4  # unused(x), sin, cos, mul
    ref.graph.eliminate_dead_code()
    ref.recompile()
    assert [n.format_node() for n in ours.graph.nodes] == \
        [n.format_node() for n in ref.graph.nodes]
    x = torch.randn(2, 4)
    torch.testing.assert_close(ours(x), model(x))
    assert eliminate_dead_code(ours) == 0


def test_dead_code_elimination_keeps_in_place_ops():
    graph = fx.Graph()
    x = graph.placeholder("x")
    buf = graph.call_function(torch.zeros, (3,))
    graph.call_method("add_", (buf, 1.0))  # no user, but it writes into buf
    graph.output(x)
    gm = fx.GraphModule(nn.Module(), graph)
    assert eliminate_dead_code(gm) == 0


class _WeightNorm(nn.Module):
    """A weight-normalised linear layer: the weight is recomputed in every forward."""

    def __init__(self) -> None:
        super().__init__()
        self.v = nn.Parameter(torch.randn(16, 8))
        self.g = nn.Parameter(torch.rand(16, 1) + 0.5)
        self.b = nn.Parameter(torch.zeros(16))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.v * (self.g / self.v.norm(dim=1, keepdim=True))
        return F.linear(x * 2.0, w, self.b)


def test_constant_folding_precomputes_the_parameter_only_ops():
    model = _WeightNorm()
    gm = trace(model)
    assert fold_constants(gm) == 3  # norm, div, mul: not `x * 2`, which depends on x
    assert count_ops(gm) == {"mul": 1, "linear": 1}
    assert fold_constants(gm) == 0  # nothing left to fold
    x = torch.randn(5, 8)
    with torch.no_grad():
        torch.testing.assert_close(gm(x), model(x))
    expected = model.v * (model.g / model.v.norm(dim=1, keepdim=True))
    torch.testing.assert_close(gm._folded_0, expected.detach())

import pytest
import torch
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from accel_lib.models import MLP, SmallCNN, vision_model
from accel_lib.stats import (
    conv2d_macs,
    count_flops,
    count_params,
    linear_macs,
    model_size_bytes,
    peak_memory_bytes,
    tensor_bytes,
)


def reference_flops(model, x):
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x)
    return counter.get_total_flops()


def test_count_params_hand_computed():
    model = nn.Linear(4, 3)  # 4*3 weights + 3 biases
    assert count_params(model) == 15
    model.bias.requires_grad_(False)
    assert count_params(model, trainable_only=True) == 12


def test_count_params_matches_torchvision_resnet18():
    assert count_params(vision_model("resnet18")) == 11_689_512  # the published figure


def test_model_size_bytes_counts_bytes_and_dtypes():
    model = nn.Linear(4, 3)
    assert model_size_bytes(model) == 15 * 4
    assert model_size_bytes(model.half()) == 15 * 2
    bn = nn.BatchNorm1d(8)  # weight, bias (params) + running mean/var (fp32) + counter (int64)
    assert model_size_bytes(bn) == 4 * 8 * 4 + 8
    assert model_size_bytes(bn, include_buffers=False) == 2 * 8 * 4


def test_model_size_bytes_counts_shared_weights_once():
    a = nn.Linear(4, 4, bias=False)
    b = nn.Linear(4, 4, bias=False)
    b.weight = a.weight
    assert model_size_bytes(nn.Sequential(a, b)) == 16 * 4


def test_linear_and_conv_macs_hand_computed():
    assert linear_macs(2, 3, 4) == 24
    # 1x1 conv is a linear layer per pixel: 2 images * 5x5 pixels * 3 in * 4 out
    assert conv2d_macs(2, 3, 4, 1, 5, 5) == 2 * 25 * 12
    assert conv2d_macs(1, 4, 8, (3, 3), 2, 2, groups=4) == 8 * 4 * 1 * 9


@pytest.mark.parametrize(
    "call, word",
    [
        (lambda: linear_macs(0, 3, 4), "batch"),
        (lambda: linear_macs(1, -3, 4), "in_features"),
        (lambda: conv2d_macs(1, 3, 4, 3, 5, 5, groups=2), "groups"),
        (lambda: conv2d_macs(1, 3, 4, 0, 5, 5), "kernel"),
    ],
)
def test_macs_reject_bad_sizes(call, word):
    with pytest.raises(ValueError, match=word):
        call()


@pytest.mark.parametrize(
    "model, shape",
    [
        (MLP(), (8, 1, 8, 8)),
        (SmallCNN(), (4, 1, 8, 8)),
        (nn.Sequential(nn.Conv2d(4, 8, 3, groups=2, stride=2), nn.Flatten(2),
                       nn.Conv1d(8, 6, 2)), (2, 4, 9, 9)),
        (vision_model("resnet18", num_classes=10), (1, 3, 32, 32)),
        (vision_model("mobilenet_v3_small"), (1, 3, 64, 64)),
    ],
)
def test_count_flops_matches_torch_flop_counter(model, shape):
    model.eval()
    x = torch.randn(shape)
    cost = count_flops(model, x)
    assert cost.flops == reference_flops(model, x)
    assert cost.uncounted == ()


def test_count_flops_mlp_by_hand_and_bytes():
    model = MLP(in_features=64, hidden_sizes=(32,), num_classes=10)
    cost = count_flops(model, torch.randn(5, 64))
    assert cost.macs == 5 * (64 * 32 + 32 * 10)
    first = next(layer for layer in cost.layers if layer.kind == "Linear")
    # weights + bias read, input read, output written; fp32
    assert first.bytes == 4 * (64 * 32 + 32) + 4 * 5 * 64 + 4 * 5 * 32
    assert first.params == 64 * 32 + 32
    assert cost.by_kind()["Linear"] == cost.flops
    assert cost.intensity == pytest.approx(cost.flops / cost.bytes)


class _Attend(nn.Module):
    """Linear -> multi-head attention (query, key and value as given) -> Linear."""

    def __init__(self, attention: nn.MultiheadAttention, cross: bool = False) -> None:
        super().__init__()
        self.embed, self.attn, self.head, self.cross = nn.Linear(8, 16), attention, \
            nn.Linear(16, 4), cross
        self.memory = nn.Linear(8, attention.kdim) if cross else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embed(x)
        if self.cross:  # keys and values from a shorter memory of another width
            m = self.memory(x[:, :3] if self.attn.batch_first else x[:3])
            return self.head(self.attn(h, m, m)[0])
        return self.head(self.attn(h, h, h)[0])


@pytest.mark.parametrize("attention, cross", [
    (nn.MultiheadAttention(16, 2), False),
    (nn.MultiheadAttention(16, 4, batch_first=True), False),
    (nn.MultiheadAttention(16, 2, add_bias_kv=True, add_zero_attn=True), False),
    (nn.MultiheadAttention(16, 2, kdim=12, vdim=12, batch_first=True), True),
])
def test_count_flops_counts_multihead_attention_like_torch(attention, cross):
    """The projections, Q K^T, the weights times V and the output projection: FlopCounterMode's
    count (train mode: eval mode's fused fast path is invisible to FlopCounterMode). It was
    only the Linear layers around it, and the attention was not listed as uncounted."""
    model = _Attend(attention, cross).train()
    x = torch.randn(5, 7, 8)
    cost = count_flops(model, x)
    assert cost.flops == reference_flops(model, x)
    assert cost.uncounted == ()
    assert cost.by_kind()["MultiheadAttention"] > 0


@pytest.mark.parametrize("batch_first", [False, True])
def test_count_flops_counts_a_whole_transformer_encoder_layer(batch_first):
    """A TransformerEncoderLayer was half counted (its feed-forward Linears only). It runs
    attention through scaled_dot_product_attention, which FlopCounterMode sees on the math
    backend; in eval mode too (count_flops's hooks turn the fused fast path off)."""
    model = nn.Sequential(nn.Linear(8, 16), nn.TransformerEncoderLayer(
        16, 2, 32, dropout=0.0, batch_first=batch_first), nn.Linear(16, 4))
    x = torch.randn(3, 6, 8)
    with sdpa_kernel(SDPBackend.MATH):
        expected = reference_flops(model.train(), x)
    assert count_flops(model.eval(), x).flops == count_flops(model.train(), x).flops == expected


def test_count_flops_counts_pruned_layers():
    """A masked (parametrized) Linear has a child module, the mask: it is still one layer."""
    from accel_lib.pruning import prune_unstructured_

    model, x = MLP(), torch.randn(4, 64)
    dense = count_flops(model, x)
    cost = count_flops(prune_unstructured_(model, 0.5), x)
    assert cost.flops == dense.flops == reference_flops(model, x)
    assert [(c.name, c.params, c.bytes) for c in cost.layers] == \
        [(c.name, c.params, c.bytes) for c in dense.layers]


def test_count_flops_lists_unknown_weighted_layers():
    model = nn.Sequential(nn.Linear(4, 4), nn.PReLU())  # PReLU has a weight, no rule here
    cost = count_flops(model, torch.randn(2, 4))
    assert cost.uncounted == ("1",)


def test_count_flops_bad_input():
    with pytest.raises(ValueError, match="inputs"):
        count_flops(nn.Linear(2, 2))
    with pytest.raises(TypeError, match="model must be an nn.Module"):
        count_flops("not a model", torch.randn(1))


def test_peak_memory_hand_computed():
    n = 1000
    x = torch.randn(n)
    # (x + 1) is alive while (... * 2) is allocated: two fp32 buffers at the peak
    assert peak_memory_bytes(lambda: (x + 1) * 2) == 2 * n * 4
    # in-place ops allocate nothing new after the first
    assert peak_memory_bytes(lambda: (x + 1).mul_(2).add_(3)) == n * 4


def test_peak_memory_ignores_in_place_writes_and_views_of_existing_tensors():
    n = 1000
    x, y = torch.randn(n), torch.randn(n)
    assert peak_memory_bytes(lambda: x.add_(1).mul_(2)) == 0  # in place: nothing allocated
    assert peak_memory_bytes(lambda: x.view(10, 100)) == 0
    assert peak_memory_bytes(lambda: torch._foreach_add_([x, y], 1.0)) == 0
    assert peak_memory_bytes(lambda: torch._foreach_add([x, y], 1.0)) == 2 * n * 4
    # an optimiser step: in-place updates of the weights and state, and two temporaries
    # alive together, sqrt(v) and sqrt(v) / sqrt(1 - beta2^t)
    p = nn.Parameter(torch.randn(n))
    p.grad = torch.randn(n)
    opt = torch.optim.Adam([p], foreach=False)
    opt.step()
    assert peak_memory_bytes(opt.step) == 2 * n * 4


def test_peak_memory_frees_dead_intermediates():
    x = torch.randn(1000)

    def chain():
        y = x + 1
        for _ in range(10):
            y = y * 2  # each old y dies once rebound
        return y

    assert peak_memory_bytes(chain) == 2 * 1000 * 4


def test_peak_memory_of_a_linear_layer():
    layer = nn.Linear(64, 32)
    x = torch.randn(16, 64)
    with torch.no_grad():
        assert peak_memory_bytes(lambda: layer(x)) >= 16 * 32 * 4


def test_peak_memory_bad_input():
    with pytest.raises(ValueError, match="fn must be callable"):
        peak_memory_bytes(None)


@pytest.mark.filterwarnings("ignore:torch.quantize_per_tensor:UserWarning")
def test_tensor_bytes_nested_and_quantized():
    assert tensor_bytes(torch.zeros(3, dtype=torch.float64)) == 24
    assert tensor_bytes({"a": [torch.zeros(2), torch.zeros(4, dtype=torch.int8)], "b": 3}) == 12
    q = torch.quantize_per_channel(torch.randn(4, 5), torch.full((4,), 0.1, dtype=torch.float64),
                                   torch.zeros(4, dtype=torch.int64), axis=0, dtype=torch.qint8)
    assert tensor_bytes(q) == 4 * 5 * 1 + 4 * 8 + 4 * 8  # int8 codes + fp64 scales + int64 zps

"""Notebook 00 (measuring speed): wrong answers the visible tests must catch, and the claims
its printed explanations make about what it measured."""

from tests.notebook_checks import Mistake

_SUMMARIZE = '''
def summarize(samples_ms):
    if len(samples_ms) == 0:
        raise ValueError("samples_ms must not be empty")
    s = sorted(float(v) for v in samples_ms)
    n = len(s)
    median = (s[(n - 1) // 2] + s[n // 2]) / 2
{quartiles}
    return median, q3 - q1
'''

_LAYER_FLOPS = '''
def layer_flops(model, x):
    flops, handles = {{}}, []

    def make_hook(name):
        def hook(module, inputs, output):
{body}
        return hook

    for name, module in model.named_modules():
        if isinstance(module, {kinds}):
            handles.append(module.register_forward_hook(make_hook(name)))
    with torch.no_grad():
        model(x)
{cleanup}
    return flops
'''
_LINEAR = '''            if isinstance(module, torch.nn.Linear):
                flops[name] = 2 * output.numel() * module.in_features
                return
'''
_CONV = '''            kh, kw = module.kernel_size
            flops[name] = 2 * output.numel() * (module.in_channels // module.groups) * kh * kw
'''
_REMOVE = '''    for handle in handles:
        handle.remove()'''


def _layer_flops(body: str = _LINEAR + _CONV, kinds: str = "(torch.nn.Linear, torch.nn.Conv2d)",
                 cleanup: str = _REMOVE) -> str:
    return _LAYER_FLOPS.format(body=body, kinds=kinds, cleanup=cleanup)


MISTAKES = [
    # ---- Exercise 1: summarize(samples_ms) -> (median, IQR)
    Mistake("ex1_summarize", "quartiles without interpolation (nearest sample)", '''
import numpy as np
def summarize(samples_ms):
    if len(samples_ms) == 0:
        raise ValueError("samples_ms must not be empty")
    s = np.asarray(samples_ms, dtype=float)
    q1, q3 = np.percentile(s, [25, 75], method="nearest")
    return float(np.median(s)), float(q3 - q1)
''', r"interpolate"),
    Mistake("ex1_summarize", "quartiles as samples at index n//4 and 3n//4",
            _SUMMARIZE.format(quartiles="    q1, q3 = s[n // 4], s[3 * n // 4]"), r"interpolate"),
    Mistake("ex1_summarize", "quartiles as the medians of the lower and upper halves",
            _SUMMARIZE.format(quartiles='''\
    lower, upper = s[:n // 2], s[(n + 1) // 2:]
    q1 = (lower[(len(lower) - 1) // 2] + lower[len(lower) // 2]) / 2
    q3 = (upper[(len(upper) - 1) // 2] + upper[len(upper) // 2]) / 2'''), r"halves"),
    Mistake("ex1_summarize", "median is the upper middle sample for an even count", '''
import numpy as np
def summarize(samples_ms):
    if len(samples_ms) == 0:
        raise ValueError("samples_ms must not be empty")
    s = np.sort(np.asarray(samples_ms, dtype=float))
    q1, q3 = np.percentile(s, [25, 75])
    return float(s[len(s) // 2]), float(q3 - q1)
''', r"mean of the middle two"),
    Mistake("ex1_summarize", "forgot to sort before taking the middle sample", '''
import numpy as np
def summarize(samples_ms):
    if len(samples_ms) == 0:
        raise ValueError("samples_ms must not be empty")
    s = np.asarray(samples_ms, dtype=float)
    n = len(s)
    q1, q3 = np.percentile(s, [25, 75])
    return float((s[(n - 1) // 2] + s[n // 2]) / 2), float(q3 - q1)
''', r"sorted"),
    Mistake("ex1_summarize", "no ValueError for an empty list", '''
import numpy as np
def summarize(samples_ms):
    q1, median, q3 = np.percentile(np.asarray(samples_ms, dtype=float), [25, 50, 75])
    return float(median), float(q3 - q1)
''', r"should raise ValueError.*got IndexError"),
    # ---- Exercise 2: conv2d_flops
    Mistake("ex2_conv_flops", "ignores groups", '''
def conv2d_flops(batch, in_channels, out_channels, kernel_size, out_height, out_width, groups=1):
    return 2 * batch * out_channels * out_height * out_width * in_channels * kernel_size ** 2
''', r"ignore `groups`"),
    Mistake("ex2_conv_flops", "divides out_channels by groups too", '''
def conv2d_flops(batch, in_channels, out_channels, kernel_size, out_height, out_width, groups=1):
    return (2 * batch * (out_channels // groups) * out_height * out_width * (in_channels // groups)
            * kernel_size ** 2)
''', r"divide out_channels"),
    Mistake("ex2_conv_flops", "MACs instead of FLOPs", '''
def conv2d_flops(batch, in_channels, out_channels, kernel_size, out_height, out_width, groups=1):
    outputs = batch * out_channels * out_height * out_width
    return outputs * (in_channels // groups) * kernel_size ** 2
''', r"FLOPs = 2 x MACs"),
    Mistake("ex2_conv_flops", "kernel counted once, not squared", '''
def conv2d_flops(batch, in_channels, out_channels, kernel_size, out_height, out_width, groups=1):
    return 2 * batch * out_channels * out_height * out_width * (in_channels // groups) * kernel_size
''', r"k x k = 9 taps"),
    Mistake("ex2_conv_flops", "counts the bias adds", '''
def conv2d_flops(batch, in_channels, out_channels, kernel_size, out_height, out_width, groups=1):
    outputs = batch * out_channels * out_height * out_width
    return 2 * outputs * (in_channels // groups) * kernel_size ** 2 + outputs
''', r"bias ignored"),
    # ---- Exercise 3: layer_flops(model, x), forward hooks
    Mistake("ex2b_layer_flops", "per example: forgets the batch",
            _layer_flops(body='''\
            per_example = output[0].numel()
            if isinstance(module, torch.nn.Linear):
                flops[name] = 2 * per_example * module.in_features
                return
            kh, kw = module.kernel_size
            flops[name] = 2 * per_example * (module.in_channels // module.groups) * kh * kw
'''), r"batch"),
    Mistake("ex2b_layer_flops", "MACs instead of FLOPs",
            _layer_flops(body=(_LINEAR + _CONV).replace("2 * output", "output")), r"2 x batch"),
    Mistake("ex2b_layer_flops", "input pixels instead of output pixels (ignores stride)",
            _layer_flops(body=_LINEAR + '''\
            kh, kw = module.kernel_size
            b, _, h, w = inputs[0].shape
            per_output = (module.in_channels // module.groups) * kh * kw
            flops[name] = 2 * b * module.out_channels * h * w * per_output
'''), r"OUTPUT pixels"),
    Mistake("ex2b_layer_flops", "ignores groups",
            _layer_flops(body=_LINEAR + _CONV.replace("(module.in_channels // module.groups)",
                                                      "module.in_channels")), r"ignore `groups`"),
    Mistake("ex2b_layer_flops", "square kernel assumed (kernel_size[0] ** 2)",
            _layer_flops(body=_LINEAR + _CONV.replace("kh, kw = module.kernel_size",
                                                      "kh = kw = module.kernel_size[0]")),
            r"K_h \* K_w"),
    Mistake("ex2b_layer_flops", "hooks left on the model",
            _layer_flops(cleanup="    pass"), r"forward hook.*handle\.remove"),
    Mistake("ex2b_layer_flops", "hooks on every module (ReLU, Flatten counted as 0)",
            _layer_flops(body='''\
            if isinstance(module, torch.nn.Linear):
                flops[name] = 2 * output.numel() * module.in_features
            elif isinstance(module, torch.nn.Conv2d):
                kh, kw = module.kernel_size
                flops[name] = 2 * output.numel() * (module.in_channels // module.groups) * kh * kw
            else:
                flops[name] = 0
''', kinds="torch.nn.Module"), r"Linear and Conv2d layers only"),
    # ---- Exercise 4: matmul_intensity
    Mistake("ex3_intensity", "ignores bytes_per_element", '''
def matmul_intensity(m, n, k, bytes_per_element=4):
    return 2 * m * n * k / (4 * (m * k + k * n + m * n))
''', r"ignore bytes_per_element"),
    Mistake("ex3_intensity", "MACs instead of FLOPs", '''
def matmul_intensity(m, n, k, bytes_per_element=4):
    return m * n * k / (bytes_per_element * (m * k + k * n + m * n))
''', r"FLOPs = 2 x MACs"),
    Mistake("ex3_intensity", "forgets writing the result", '''
def matmul_intensity(m, n, k, bytes_per_element=4):
    return 2 * m * n * k / (bytes_per_element * (m * k + k * n))
''', r"write C"),
    # ---- Exercise 5: attainable_gflops, bound
    Mistake("ex4_roofline", "max instead of min", '''
def attainable_gflops(intensity, peak_gflops, bandwidth_gbs):
    return max(peak_gflops, intensity * bandwidth_gbs)


def bound(intensity, peak_gflops, bandwidth_gbs):
    return "memory" if intensity * bandwidth_gbs < peak_gflops else "compute"
''', r"min\(peak, I x bandwidth\)"),
    Mistake("ex4_roofline", "no peak cap", '''
def attainable_gflops(intensity, peak_gflops, bandwidth_gbs):
    return intensity * bandwidth_gbs


def bound(intensity, peak_gflops, bandwidth_gbs):
    return "memory" if intensity * bandwidth_gbs < peak_gflops else "compute"
''', r"capped by the 100 GFLOP/s peak"),
    Mistake("ex4_roofline", "the ridge point itself counted as memory-bound", '''
def attainable_gflops(intensity, peak_gflops, bandwidth_gbs):
    return min(peak_gflops, intensity * bandwidth_gbs)


def bound(intensity, peak_gflops, bandwidth_gbs):
    return "memory" if intensity <= peak_gflops / bandwidth_gbs else "compute"
''', r"exactly at the ridge"),
    Mistake("ex4_roofline", "ridge inverted (bandwidth / peak)", '''
def attainable_gflops(intensity, peak_gflops, bandwidth_gbs):
    return min(peak_gflops, intensity * bandwidth_gbs)


def bound(intensity, peak_gflops, bandwidth_gbs):
    return "memory" if intensity < bandwidth_gbs / peak_gflops else "compute"
''', r"ridge peak / bandwidth"),
]

# Run at the end of the executed notebook, in its kernel: every explanation it printed
# agrees with what it measured.
CLAIMS = '''
import os as _os
from accel_lib.runtime import usable_cpus as _usable_cpus

# thread counts come from the CPU quota, never from the host's core count
assert cpus == _usable_cpus() and threads == cpus, (cpus, threads, _os.cpu_count())
assert torch.get_num_threads() <= cpus, (torch.get_num_threads(), cpus)

# the roofline claims of the widget and the written question: a matrix-vector product
# (0.5 FLOP/B in fp32) sits left of this machine's measured ridge point
assert roof.ridge > 0.5, roof

# warm-up: the story follows the measured first-call ratio
assert f"{warmup_ratio:.1f}x" in warmup_story
assert ("paid for one-off work" in warmup_story) == (warmup_ratio >= 1.5), warmup_story
assert ("about as much as a steady one" in warmup_story) == (warmup_ratio <= 1.1)

# noise: above / below / agree, as measured
_r = np.mean(samples) / np.median(samples)
assert ("above the median" in noise_story) == (_r > 1.02), (_r, noise_story)
assert ("below the median" in noise_story) == (_r < 0.98), (_r, noise_story)

# batching: the title says which grows faster, as measured; the story quotes the measurements
assert abs(batch_gain * latency_growth - batch_sizes[-1]) < 1e-6 * batch_sizes[-1]
_pays = batch_gain > latency_growth
assert ("throughput grows faster" in batch_title) == _pays, (batch_gain, latency_growth)
assert ("latency grows faster" in batch_title) == (not _pays)
assert f"throughput grew {batch_gain:.0f}x" in batch_story
assert f"latency grew {latency_growth:.0f}x" in batch_story
assert ("Batching pays on this machine" in batch_story) == _pays
_cached = gflops_1 > roof.attainable_gflops(cost_1.intensity)
assert ("read from cache" in batch_story) == _cached, batch_story
_near_peak = gflops_big >= 0.5 * roof.peak_gflops
assert ("close to the peak" in batch_story) == (not _pays and _near_peak), batch_story
assert ("far from the peak" in batch_story) == (not _pays and not _near_peak), batch_story

# threads: measured speedups decide every verdict
if cpus > 1:
    _s1, _s256 = thread_rows[0][3], thread_rows[1][3]
    for _label, _s in (("at batch 1", _s1), ("at batch 256", _s256)):
        _said = thread_story.split(_label + " they ", 1)[1]
        assert _said.startswith("helped" if _s >= 1.15 else "slowed it down" if _s <= 0.87
                                else "made no real difference"), (_label, _s, thread_story)
    _slower = max(_s1, _s256) <= 0.87
    assert ("slowed both down" in thread_story) == _slower
    assert ("large batch gains more" in thread_story) == (not _slower and _s256 > 1.1 * _s1)
    assert ("tiny call gained more" in thread_story) == (not _slower and _s1 > 1.1 * _s256)
else:
    assert "only 1 CPU" in thread_story and not thread_rows
'''

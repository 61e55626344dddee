import pytest
import torch

from accel_lib import precision as PR
from accel_lib.models import SmallCNN

AVX2 = "flags : fpu sse avx avx2 fma\n"
AMX = "model name : Test CPU\nflags : avx2 avx512f avx512_bf16 amx_tile amx_bf16 amx_int8\n"


def test_hardware_report_reads_flags(tmp_path):
    f = tmp_path / "cpuinfo"
    f.write_text(AMX)
    r = PR.hardware_report(f)
    assert r.cpu_model == "Test CPU" and r.has_bf16
    assert r.flags == ("avx2", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8")
    assert r.cpu_capability == torch.backends.cpu.get_cpu_capability()
    f.write_text(AVX2)
    assert PR.hardware_report(f).has_bf16 is False


def test_explain_dtype_speed_follows_flags_and_ratio(tmp_path):
    f = tmp_path / "cpuinfo"
    f.write_text(AVX2)
    slow = PR.explain_dtype_speed("bfloat16", 0.01, PR.hardware_report(f))
    assert "no bfloat16 arithmetic" in slow and "generic, untuned kernel" in slow
    f.write_text(AMX)
    fast = PR.explain_dtype_speed("bfloat16", 3.5, PR.hardware_report(f))
    assert "faster than fp32" in fast and "AMX" in fast
    assert "int8 dot products" in PR.explain_dtype_speed("int8", 4.0, PR.hardware_report(f))
    with pytest.raises(ValueError, match="dtype"):
        PR.explain_dtype_speed("float64", 1.0, PR.hardware_report(f))


def test_dtype_peaks_small():
    peaks = PR.dtype_peaks(n=64, repeats=2, dtypes=(torch.float32, torch.bfloat16, torch.int8))
    assert peaks["float32"] > 0 and peaks["bfloat16"] > 0
    roofs = PR.dtype_rooflines(peaks, 10.0)
    assert roofs["float32"].peak_gflops == peaks["float32"]
    with pytest.raises(ValueError, match="dtype"):
        PR.dtype_peaks(n=64, dtypes=(torch.float64,))


def test_clear_errors_for_devices():
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="device='cuda'"):
            PR.check_device("cuda")
        with pytest.raises(ValueError, match="device"):
            PR.tf32_ratio()
    with pytest.raises(ValueError, match="device"):
        PR.check_device("tpu")
    with pytest.raises(TypeError, match="device"):
        PR.check_device(3)


def test_autocast_bf16_training_close_to_fp32(digits):
    res = PR.compare_precisions(SmallCNN(channels=(8,)), digits, epochs=2)
    assert set(res) == {"float32", "bfloat16"}
    assert res["float32"].accuracy > 0.85
    assert abs(res["float32"].accuracy - res["bfloat16"].accuracy) < 0.05
    with pytest.raises(ValueError, match="dtype"):
        PR.train_mixed(SmallCNN(), digits, torch.float64)


def test_channels_last_timing_same_output():
    t = PR.channels_last_timing(SmallCNN(channels=(8,)), (1, 8, 8), batch_size=4, repeats=3)
    assert t.max_abs_diff < 1e-5 and t.speedup > 0
    with pytest.raises(ValueError, match="input_shape"):
        PR.channels_last_timing(SmallCNN(), (8, 8))

"""TensorFlow's data parallelism: ``tf.distribute.MirroredStrategy`` on 2 logical CPU devices.

MirroredStrategy keeps one copy of every variable per device and all-reduces the gradients
each step, the same algorithm as :mod:`accel_lib.parallel.data`, inside one process (threads,
one per device) instead of one process per device. Logical devices must be configured before
TensorFlow initialises its runtime, so :func:`mirrored_vs_single` runs the comparison in a
fresh subprocess (``python -m accel_lib.parallel.tf_mirrored``), which also keeps TensorFlow
out of the caller's process (import torch first, TF after, everywhere).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from .._validate import check_int

__all__ = ["mirrored_vs_single"]


def _run(steps: int, devices: int) -> dict:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import numpy as np
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(devices)])
    names = [d.name for d in tf.config.list_logical_devices("CPU")]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 16)).astype("float32")
    y = rng.standard_normal((64, 1)).astype("float32")
    w0 = rng.standard_normal((16, 1)).astype("float32") * 0.1
    lr = 0.1

    def loss_of(w: tf.Variable, b: tf.Variable, xb: tf.Tensor, yb: tf.Tensor,
                global_n: int) -> tf.Tensor:
        return tf.reduce_sum((tf.matmul(xb, w) + b - yb) ** 2) / global_n

    # One device: plain gradient descent on the whole batch.
    w, b = tf.Variable(w0), tf.Variable(tf.zeros(1))
    for _ in range(steps):
        with tf.GradientTape() as tape:
            loss = loss_of(w, b, x, y, len(x))
        gw, gb = tape.gradient(loss, [w, b])
        w.assign_sub(lr * gw)
        b.assign_sub(lr * gb)
    single = np.concatenate([w.numpy().ravel(), b.numpy().ravel()])

    strategy = tf.distribute.MirroredStrategy(names)
    with strategy.scope():
        mw, mb = tf.Variable(w0), tf.Variable(tf.zeros(1))
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(len(x))
    dist_batch = next(iter(strategy.experimental_distribute_dataset(data)))

    @tf.function
    def step(xb: tf.Tensor, yb: tf.Tensor) -> None:
        def replica_step(xr: tf.Tensor, yr: tf.Tensor) -> None:
            with tf.GradientTape() as tape:
                loss = loss_of(mw, mb, xr, yr, len(x))
            grads = tape.gradient(loss, [mw, mb])
            ctx = tf.distribute.get_replica_context()
            grads = ctx.all_reduce("sum", grads)  # per-replica sums -> the whole batch's
            mw.assign_sub(lr * grads[0])
            mb.assign_sub(lr * grads[1])
        strategy.run(replica_step, args=(xb, yb))

    for _ in range(steps):
        step(*dist_batch)
    mirrored = np.concatenate([mw.numpy().ravel(), mb.numpy().ravel()])
    return {"replicas": strategy.num_replicas_in_sync, "devices": names,
            "max_abs_diff": float(np.abs(mirrored - single).max()), "steps": steps,
            "tensorflow": tf.__version__}


def mirrored_vs_single(steps: int = 10, devices: int = 2, timeout: float = 120.0) -> dict:
    """Train a linear model ``steps`` steps with MirroredStrategy on ``devices`` logical CPUs
    and on one device (fresh subprocess); return ``replicas``, ``max_abs_diff`` of the final
    weights and the TF version."""
    steps = check_int(steps, "steps")
    devices = check_int(devices, "devices")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    proc = subprocess.run([sys.executable, "-m", "accel_lib.parallel.tf_mirrored", str(steps),
                           str(devices)], capture_output=True, text=True, timeout=timeout,
                          env=env)
    if proc.returncode:
        raise RuntimeError(f"the TensorFlow subprocess failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    print(json.dumps(_run(int(sys.argv[1]), int(sys.argv[2]))))

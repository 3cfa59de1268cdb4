"""The process-wide TensorFlow settings of a training run, and its input pipeline's options.

`runegen train` sets them once, before the run builds its networks; the step benchmarks
(benchmarks/step_settings.py, step_kernels.py, race_loops.py) set the same, so that they time
the step a run takes.
"""

from __future__ import annotations


def configure_tensorflow(tf, deterministic: bool) -> None:
    """Set op determinism (same seed, same weights) and the graph options; benchmarks/step_settings.py
    times each setting."""
    if deterministic:
        tf.config.experimental.enable_op_determinism()
    # Grappler's op-fusing remapper fails on the self-conditioned D's gradient graph and says so on
    # stderr ("remapper failed") at every start, leaving that graph as it was; with it off the
    # step runs as fast.
    tf.config.optimizer.set_experimental_options({"remapping": False})


def without_autotune(dataset):
    """`dataset` with tf.data's autotuning off. An epoch's iterator, when it is destroyed, waits for
    the autotuner's background thread to wake up, and that thread sleeps longer and longer: epochs
    were held to exactly 20.48, 40.96, 81.92 or 141.92 s, the cores idle meanwhile (up to half of
    an epoch; docs/training_speed.md). A pipeline of cached tensors has nothing to tune."""
    import tensorflow as tf

    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.with_options(options)

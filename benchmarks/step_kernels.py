"""Is the fp32 training step limited by its kernels? The default step's layers on this CPU.

G is the seed's network, fixed by issue 10; what could still change is how its layers are
computed. This times, at the training batch (64), in float32 as `--precision auto` runs on
AVX2-only CPUs:

- each multiply-add layer of the default G and D (G's Dense and three transposed convolutions;
  D's two spectrally normalised convolutions, its Q head's Dense and its logit; the Keras layers
  themselves), forward and forward + backward (the gradients for its input and its kernel, as the
  training step needs them), as milliseconds and achieved GFLOP/s (runegen.export.flops counts);
  the step runs D's layers three times (real, fake, the invariance term's shifted real batch);
- the stride-1 transposed convolution (four fifths of G's FLOPs) against the plain convolution that
  computes the same output (flipped kernel, in and out channels swapped; checked equal first);
- the whole generator in training mode (BatchNorm with batch statistics), forward + backward.

    ONEDNN_MAX_CPU_ISA=AVX2 python benchmarks/step_kernels.py   # oneDNN held to AVX2 kernels

Each figure is the fastest of `--rounds` rounds of `--calls` calls. A record, not a test.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from step_settings import positive_int  # noqa: E402

BATCH = 64


def fastest(call, calls: int, rounds: int) -> float:
    """Seconds per call: the fastest round's mean (the first call, the tracing, not timed)."""
    call()
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(calls):
            result = call()
        np.asarray(result)  # wait for the last call's result
        best = min(best, (time.perf_counter() - started) / calls)
    return best


def forward_and_backward(compute, inputs, variables):
    """compute(inputs) alone, and with the gradients of a sum of squares for inputs and variables."""
    import tensorflow as tf

    forward = tf.function(lambda: compute(inputs), autograph=False)

    @tf.function(autograph=False)
    def both():
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            loss = tf.reduce_sum(tf.square(compute(inputs)))
        # Every gradient feeds the result, or the graph would prune the kernel's away.
        return tf.add_n([tf.reduce_sum(gradient) for gradient in tape.gradient(loss, [inputs, *variables])])

    return forward, both


def report(name: str, flops_per_image: int, forward, both, args) -> None:
    seconds_forward = fastest(forward, args.calls, args.rounds)
    seconds_both = fastest(both, args.calls, args.rounds)
    flops = flops_per_image * BATCH
    print(f"{name:48s} forward {seconds_forward * 1e3:7.2f} ms ({flops / seconds_forward / 1e9:6.1f} GFLOP/s)"
          f"   forward+backward {seconds_both * 1e3:7.2f} ms ({3 * flops / seconds_both / 1e9:6.1f} GFLOP/s)",
          flush=True)


def multiply_add_layers(model):
    """The Dense and convolution layers of a model and of the models nested in it, in order."""
    import keras
    from keras import layers

    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from multiply_add_layers(layer)
        elif isinstance(layer, (layers.Dense, layers.Conv2D, layers.Conv2DTranspose)):
            yield layer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=positive_int, default=30)
    parser.add_argument("--rounds", type=positive_int, default=3)
    args = parser.parse_args()
    # TensorFlow only now: --help and a bad argument answer without its seconds of import.
    from runegen.core.quiet import import_tensorflow

    tf = import_tensorflow()  # first: it quiets TensorFlow's and Keras's start-up noise
    from keras import layers

    from runegen.export.flops import layer_flops, model_flops
    from runegen.training.config import TrainConfig
    from runegen.training.nets import PRESETS
    from runegen.training.tf_settings import configure_tensorflow

    configure_tensorflow(tf, True)  # as runegen train sets it
    rng = np.random.default_rng(0)
    generator, discriminator = PRESETS["s1"].pair_for(TrainConfig())
    print(f"the default s1 pair, batch {BATCH}, float32; backward counted as twice the forward FLOPs")
    for layer in [*multiply_add_layers(generator), *multiply_add_layers(discriminator)]:
        inputs = tf.constant(rng.standard_normal((BATCH, *layer.input.shape[1:]), np.float32))
        name = f"{type(layer).__name__} {tuple(layer.input.shape[1:])} -> {tuple(layer.output.shape[1:])}"
        report(name, layer_flops(layer), *forward_and_backward(layer, inputs, layer.trainable_variables), args)
        if isinstance(layer, layers.Conv2DTranspose) and layer.strides == (1, 1):
            # A stride-1 transposed convolution is the convolution with the kernel flipped in space
            # and its channel axes swapped.
            twin = tf.Variable(tf.transpose(layer.kernel[::-1, ::-1], (0, 1, 3, 2)))
            convolve = lambda x: tf.nn.conv2d(x, twin, 1, "SAME")  # noqa: E731
            np.testing.assert_allclose(convolve(inputs).numpy(), layer(inputs).numpy(), rtol=1e-4, atol=1e-4)
            report("  the same as a plain Conv2D", layer_flops(layer), *forward_and_backward(convolve, inputs, [twin]),
                   args)
    latents = tf.constant(rng.standard_normal((BATCH, 100), np.float32))
    report("whole generator (training mode)", model_flops(generator),
           *forward_and_backward(lambda z: generator(z, training=True), latents, generator.trainable_variables), args)


if __name__ == "__main__":
    main()

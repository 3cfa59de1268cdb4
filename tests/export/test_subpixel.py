"""Transposed convolutions rewritten as Conv2D (+ depth-to-space): same output, no ConvTranspose."""

import keras
import numpy as np
import pytest

from runegen.export.fold import fold_batch_norm
from runegen.export.subpixel import DepthToSpace, conv_transpose_as_conv
from runegen.training.nets import PRESETS


def randomise_weights(model, seed=0):
    """Trained-like weights: kernels scaled by fan-in, non-zero biases, BN statistics away from 0/1."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        weights = layer.get_weights()
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, variance = weights
            layer.set_weights([rng.uniform(0.5, 2, gamma.shape), rng.normal(0, 0.3, beta.shape),
                               rng.normal(0, 0.3, mean.shape), rng.uniform(0.5, 2, variance.shape)])
        elif weights:
            kernel = weights[0]
            fan_in = kernel.shape[0] if kernel.ndim == 2 else np.prod(kernel.shape[:2]) * kernel.shape[-1]
            layer.set_weights([rng.normal(0, 1 / np.sqrt(fan_in), kernel.shape)]
                              + [rng.normal(0, 0.1, w.shape) for w in weights[1:]])


def latents(n=64, seed=1):
    return np.random.default_rng(seed).standard_normal((n, 100)).astype(np.float32)


@pytest.mark.parametrize("preset", ["s1", "s2"])
def test_rewritten_generator_equals_the_folded_one(preset):
    generator = PRESETS[preset].generator()
    randomise_weights(generator)
    folded = fold_batch_norm(generator)
    rewritten = conv_transpose_as_conv(folded)
    assert not any(isinstance(layer, keras.layers.Conv2DTranspose) for layer in rewritten.layers)
    assert sum(isinstance(layer, DepthToSpace) for layer in rewritten.layers) == 2  # the two stride-2 layers
    z = latents()
    expected = np.asarray(folded(z))
    assert np.abs(np.asarray(rewritten(z)) - expected).max() <= 1e-5
    assert np.abs(np.asarray(rewritten(z)) - np.asarray(generator(z, training=False))).max() <= 1e-5


@pytest.mark.parametrize("kernel", [1, 2, 3, 4, 5, 6])
@pytest.mark.parametrize("strides", [1, 2, 3, (2, 2)])
def test_any_same_transposed_convolution(kernel, strides):
    """Odd and even kernels, strides 1-3: the padding reproduces TensorFlow's "same" exactly."""
    model = keras.Sequential([keras.Input((5, 6, 3)),
                              keras.layers.Conv2DTranspose(4, kernel, strides=strides, padding="same",
                                                           activation="tanh")])
    randomise_weights(model, seed=kernel)
    x = np.random.default_rng(2).standard_normal((3, 5, 6, 3)).astype(np.float32)
    rewritten = conv_transpose_as_conv(model)
    assert not any(isinstance(layer, keras.layers.Conv2DTranspose) for layer in rewritten.layers)
    assert np.abs(np.asarray(rewritten(x)) - np.asarray(model(x))).max() <= 1e-5


def test_kernel_shapes_of_the_sub_pixel_form():
    """Kernel 5 stride 2 is a 3x3 "same" conv per phase; kernel 3 stride 2 a padded 2x2 one."""
    s1 = conv_transpose_as_conv(fold_batch_norm(PRESETS["s1"].generator()))
    s2 = conv_transpose_as_conv(fold_batch_norm(PRESETS["s2"].generator()))
    convs = lambda m: [tuple(l.kernel.shape) for l in m.layers if isinstance(l, keras.layers.Conv2D)]  # noqa: E731
    assert convs(s1) == [(5, 5, 256, 128), (3, 3, 128, 4 * 64), (3, 3, 64, 4 * 1)]
    assert convs(s2) == [(2, 2, 256, 4 * 128), (3, 3, 128, 64), (2, 2, 64, 4 * 1)]
    assert sum(isinstance(l, keras.layers.ZeroPadding2D) for l in s2.layers) == 2


def test_valid_padding_is_refused():
    model = keras.Sequential([keras.Input((5, 5, 3)),
                              keras.layers.Conv2DTranspose(4, 3, strides=2, padding="valid")])
    with pytest.raises(ValueError, match="only 'same'"):
        conv_transpose_as_conv(model)

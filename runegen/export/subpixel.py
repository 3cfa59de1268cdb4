"""Transposed convolutions rewritten as ordinary ones, where runtimes have their fastest kernels.

TensorFlow's "same" Conv2DTranspose (kernel k, stride s) is the gradient of a "same" Conv2D, so
along each axis  y[o] = sum over taps t and inputs i with  s*i + t - P = o  of  w[t] * x[i],
with P = max(k - s, 0) // 2, the left padding of that forward convolution.

- Stride 1: y[o] = sum_t w[t] x[o + P - t]: a Conv2D with the kernel flipped spatially and its
  channel axes swapped (Keras stores ConvTranspose kernels as (h, w, out, in)). With P = (k-1)//2
  that is a "same" Conv2D for odd k; even k gets an explicit asymmetric ZeroPadding2D.
- Stride s > 1, sub-pixel form: write o = s*q + r (phase r). The taps that reach phase r are
  t = s*m + c_r with c_r = (r + P) mod s, reading input q + d_r - m with d_r = (r + P) // s. So
  every phase is a small ordinary convolution over the *input* grid, at offsets j = d_r - m. One
  Conv2D whose window spans the union of all phases' offsets (zeros where a phase has no tap)
  makes s*s*out channels, channel (ry*s + rx)*out + c holding phase (ry, rx), which is exactly
  tf.nn.depth_to_space's layout. Kernel 5 stride 2: offsets -1..1, a 3x3 "same" conv per phase;
  kernel 3 stride 2: offsets -1..0, a 2x2 conv after ZeroPadding2D(((1, 0), (1, 0))).

The activation is applied after the shuffle. The result is only traced for export (tf2onnx's
DepthToSpace, TFLite's DEPTH_TO_SPACE), never saved as .keras, so a small layer around
tf.nn.depth_to_space is enough.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from keras import layers


class DepthToSpace(layers.Layer):
    """Pixel shuffle, NHWC: (n, h, w, s*s*c) -> (n, s*h, s*w, c), TensorFlow's channel order."""

    def __init__(self, block_size: int, **kwargs):
        super().__init__(**kwargs)
        self.block_size = block_size

    def call(self, inputs):
        return tf.nn.depth_to_space(inputs, self.block_size)

    def compute_output_shape(self, input_shape):
        n, h, w, c = input_shape
        s = self.block_size
        scale = lambda d: None if d is None else d * s  # noqa: E731
        return (n, scale(h), scale(w), None if c is None else c // (s * s))

    def get_config(self):
        return {**super().get_config(), "block_size": self.block_size}


def _phases(k: int, s: int) -> tuple[list[list[tuple[int, int]]], int, int]:
    """Along one axis: for each output phase r, its (input offset j, tap t) pairs; and the range
    of offsets (lowest, highest) over all phases."""
    pad = max(k - s, 0) // 2
    phases = []
    for r in range(s):
        c, d = (r + pad) % s, (r + pad) // s
        phases.append([(d - m, s * m + c) for m in range((k - c + s - 1) // s)])
    offsets = [j for phase in phases for j, _ in phase]
    return phases, min(offsets), max(offsets)


def transposed_as_conv(kernel: np.ndarray, bias: np.ndarray | None, strides: tuple[int, int]):
    """The ordinary-convolution weights equal to a "same" Conv2DTranspose kernel (kh, kw, out, in).

    Returns (conv kernel (KH, KW, in, s_h*s_w*out), bias tiled per phase or None, padding
    ((top, bottom), (left, right)) to apply before a "valid" Conv2D)."""
    kh, kw, out_channels, in_channels = kernel.shape
    sh, sw = strides
    (rows, low_h, high_h), (cols, low_w, high_w) = _phases(kh, sh), _phases(kw, sw)
    conv = np.zeros((high_h - low_h + 1, high_w - low_w + 1, in_channels, sh * sw * out_channels),
                    dtype=kernel.dtype)
    for ry, row_taps in enumerate(rows):
        for rx, col_taps in enumerate(cols):
            first = (ry * sw + rx) * out_channels
            for jy, ty in row_taps:
                for jx, tx in col_taps:
                    conv[jy - low_h, jx - low_w, :, first:first + out_channels] = kernel[ty, tx].T
    tiled = None if bias is None else np.tile(bias, sh * sw)
    return conv, tiled, ((-low_h, high_h), (-low_w, high_w))


def _replacement(layer: layers.Conv2DTranspose) -> tuple[list[layers.Layer], list[list[np.ndarray]]]:
    config = layer.get_config()
    if config["padding"] != "same" or config.get("output_padding") is not None \
            or tuple(config["dilation_rate"]) != (1, 1) or config.get("data_format") == "channels_first":
        raise ValueError(f"{layer.name}: only 'same', undilated, channels_last Conv2DTranspose "
                         "without output_padding can be rewritten")
    weights = layer.get_weights()
    bias = weights[1] if layer.use_bias else None
    strides = tuple(config["strides"])
    kernel, bias, padding = transposed_as_conv(weights[0], bias, strides)
    new_layers: list[layers.Layer] = []
    new_weights: list[list[np.ndarray]] = []
    (top, bottom), (left, right) = padding
    if max(top, bottom, left, right) and (top, left) == (bottom, right) \
            and kernel.shape[0] == 2 * top + 1 and kernel.shape[1] == 2 * left + 1:
        conv_padding = "same"  # symmetric, and what TensorFlow's "same" would pad anyway
    else:
        conv_padding = "valid"
        if max(top, bottom, left, right):
            new_layers.append(layers.ZeroPadding2D(padding, name=f"{layer.name}_pad", dtype="float32"))
            new_weights.append([])
    new_layers.append(layers.Conv2D(
        kernel.shape[-1], kernel.shape[:2], padding=conv_padding, use_bias=bias is not None,
        name=f"{layer.name}_conv", dtype="float32"))
    new_weights.append([kernel] if bias is None else [kernel, bias])
    if strides != (1, 1):
        if strides[0] != strides[1]:
            raise ValueError(f"{layer.name}: unequal strides {strides} have no depth-to-space form")
        new_layers.append(DepthToSpace(strides[0], name=f"{layer.name}_shuffle", dtype="float32"))
        new_weights.append([])
    if config["activation"] != "linear":
        new_layers.append(layers.Activation(config["activation"], name=f"{layer.name}_act",
                                            dtype="float32"))
        new_weights.append([])
    return new_layers, new_weights


def conv_transpose_as_conv(model: keras.Model) -> keras.Model:
    """A new Sequential equal to `model` in which every "same" Conv2DTranspose is an ordinary
    Conv2D (stride 1) or a Conv2D followed by a depth-to-space shuffle (stride > 1)."""
    if not isinstance(model, keras.Sequential):
        raise ValueError("conv_transpose_as_conv rewrites Sequential models only")
    new_layers: list[layers.Layer] = []
    weights: list[list[np.ndarray]] = []
    for layer in model.layers:
        if isinstance(layer, layers.Conv2DTranspose):
            replacement, replacement_weights = _replacement(layer)
            new_layers += replacement
            weights += replacement_weights
        else:
            new_layers.append(type(layer).from_config(layer.get_config()))
            weights.append(layer.get_weights())
    rewritten = keras.Sequential([keras.Input(model.input_shape[1:]), *new_layers],
                                 name=f"{model.name}_conv")
    for layer, layer_weights in zip(rewritten.layers, weights):
        layer.set_weights(layer_weights)
    return rewritten

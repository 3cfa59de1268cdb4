"""The inference graph: BatchNormalization folded into the layer before it, dropout gone.

Neither tf2onnx nor onnxruntime folds a BatchNormalization that follows a ConvTranspose, and
Keras 3 emits BN as element-wise ops, so every exported file would carry four extra ops per BN.
In inference mode BN is an affine map per output channel,
    y = gamma * (x - mean) / sqrt(var + eps) + beta = scale * x + shift,
and a Dense or Conv2DTranspose is linear per output channel, so the two compose into one layer
with kernel * scale and bias * scale + shift.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers

FOLDABLE = (layers.Dense, layers.Conv2DTranspose, layers.Conv2D)
DROPPED = (layers.Dropout, layers.GaussianNoise, layers.GaussianDropout)


def fold_batch_norm(model: keras.Model) -> keras.Model:
    """A new Sequential equal to `model` in inference mode, with each BN merged into the layer
    before it. Only Sequential models whose BNs directly follow a Dense/Conv layer are folded."""
    folded_layers: list[keras.layers.Layer] = []
    weights: list[list[np.ndarray]] = []
    for layer in model.layers:
        if isinstance(layer, DROPPED):
            continue
        if isinstance(layer, layers.BatchNormalization):
            previous = folded_layers[-1] if folded_layers else None
            if not isinstance(previous, FOLDABLE):
                raise ValueError(f"cannot fold {layer.name}: it does not follow a Dense or Conv layer")
            weights[-1] = _fold(previous, weights[-1], layer)
            continue
        config = layer.get_config()
        if isinstance(layer, FOLDABLE):
            config["use_bias"] = True  # the folded shift lives in the bias
            kernel = layer.get_weights()[0]
            bias = layer.get_weights()[1] if layer.use_bias else np.zeros(_channels(layer), np.float32)
            weights.append([kernel, bias])
        else:
            weights.append(layer.get_weights())
        config["dtype"] = "float32"
        folded_layers.append(type(layer).from_config(config))

    inference = keras.Sequential([keras.Input(model.input_shape[1:]), *folded_layers],
                                 name=f"{model.name}_inference")
    for layer, layer_weights in zip(inference.layers, weights):
        layer.set_weights(layer_weights)
    return inference


def _channels(layer) -> int:
    return layer.units if isinstance(layer, layers.Dense) else layer.filters


def _fold(layer, kernel_and_bias, bn: layers.BatchNormalization) -> list[np.ndarray]:
    kernel, bias = kernel_and_bias
    gamma = bn.gamma.numpy() if bn.scale else 1.0
    beta = bn.beta.numpy() if bn.center else 0.0
    scale = gamma / np.sqrt(bn.moving_variance.numpy() + bn.epsilon)
    shift = beta - bn.moving_mean.numpy() * scale
    # Output channels sit on the last kernel axis for Dense/Conv2D, and on axis 2 for
    # Conv2DTranspose (kernel shape: height, width, out_channels, in_channels).
    out_axis = 2 if isinstance(layer, layers.Conv2DTranspose) else kernel.ndim - 1
    shape = [1] * kernel.ndim
    shape[out_axis] = -1
    return [(kernel * scale.reshape(shape)).astype(np.float32),
            (bias * scale + shift).astype(np.float32)]

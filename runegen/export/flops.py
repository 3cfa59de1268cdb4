"""Floating-point operations per generated image, counted from the model's own layers.

One multiply-add is 2 FLOPs. The bench divides measured images/s by this to get achieved GFLOP/s;
the exporter stores it in each file's metadata so the edge side (no Keras) knows it too.
"""

from __future__ import annotations


def layer_flops(layer) -> int:
    """Multiply-add FLOPs of one Keras layer for a single image (element-wise ops ignored)."""
    from keras import layers

    if isinstance(layer, layers.Dense):
        return 2 * layer.kernel.shape[0] * layer.kernel.shape[1]
    if isinstance(layer, layers.Conv2DTranspose):  # every input pixel scatters a full kernel
        height, width, in_channels = layer.input.shape[1:]
        kernel_h, kernel_w, out_channels, _ = layer.kernel.shape
        return 2 * height * width * in_channels * kernel_h * kernel_w * out_channels
    if isinstance(layer, layers.Conv2D):  # every output pixel gathers a full kernel
        height, width, out_channels = layer.output.shape[1:]
        kernel_h, kernel_w, in_channels, _ = layer.kernel.shape
        return 2 * height * width * out_channels * kernel_h * kernel_w * in_channels
    return 0


def model_flops(model) -> int:
    return int(sum(layer_flops(layer) for layer in model.layers))


